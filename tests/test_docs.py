"""Keep README.md and docs/ honest: short README, links that resolve, and commands, flags, paths,
modules and options that exist in the code. Text only: nothing is imported or run."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from lib.inference.config import InferConfig
from lib.training.config import TrainConfig

# lib.train and lib.predict spell every training / inference option as a flag, generated from the
# option dataclasses
TRAIN_FLAGS = {"--" + f.name.replace("_", "-") for f in fields(TrainConfig)}
INFER_FLAGS = {"--" + f.name.replace("_", "-") for f in fields(InferConfig)}
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 150

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE = re.compile(r"`([^`\n]+)`")
MODULE_CMD = re.compile(r"python -m (lib(?:\.\w+)+)")
SCRIPT_CMD = re.compile(r"python ((?:bench|sample-data)/[\w/.-]+\.py)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
REPO_PREFIXES = ("lib/", "monailabel_app/", "bench/", "tests/", "sample-data/", "docs/", ".ci/")
PLACEHOLDER = re.compile(r"[<>*…]|\.\.\.|\b[A-Z]{2,}\b")


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def code_lines(text: str) -> list[str]:
    """Lines of the fenced code blocks, backslash continuations joined."""
    joined = "\n".join(block.group(0) for block in FENCE.finditer(text)).replace("\\\n", " ")
    return joined.splitlines()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Anchors of a page's headings (a repeated heading gets GitHub's -1, -2 suffixes)."""
    counts: dict[str, int] = {}
    names = set()
    for line in prose(page.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = slug(m.group(1).replace("`", ""))
            n = counts.get(base, 0)
            names.add(f"{base}-{n}" if n else base)
            counts[base] = n + 1
    return names


def module_source(name: str) -> Path | None:
    """The file ``python -m name`` runs (a module, or a package's ``__main__``), if it exists."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def commands(text: str) -> list[tuple[str, Path | None, str]]:
    """(program, its source file, the rest of the command) for every ``python -m lib.X`` and
    ``python bench|sample-data/X.py`` in inline code spans and code-block lines."""
    spans = INLINE.findall(prose(text)) + code_lines(text)
    found = []
    for span in spans:
        for pattern, source in ((MODULE_CMD, module_source), (SCRIPT_CMD, lambda p: ROOT / p)):
            for m in pattern.finditer(span):
                rest = re.split(r"&&|;|\s#", span[m.end() :])[0]  # up to the next shell command
                found.append((m.group(1), source(m.group(1)), rest))
    return found


def ignored_prefixes() -> tuple[str, ...]:
    """Plain (glob-free) entries of .gitignore: folders that exist only after a run."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return tuple(s.strip("/") for s in lines if s.strip() and not s.startswith("#") and "*" not in s)


def code_map() -> list[str]:
    """First word of every line of the README's code-map block."""
    section = README.read_text().split("## Code map", 1)[1]
    block = FENCE.search(section)
    assert block, "README.md: the code map is a fenced block under '## Code map'"
    return [line.split()[0] for line in block.group(0).splitlines()[1:-1] if line.strip()]


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no heading #{anchor} in {path.name})")
    assert not broken, f"{page.name}: broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_commands_and_their_flags_exist(page: Path) -> None:
    text = page.read_text()
    problems = []
    for script in re.findall(r"\bbench/[\w/-]+\.py\b", text):
        if not (ROOT / script).is_file():
            problems.append(f"{script} does not exist")
    for result in re.findall(r"\bbench/results/[\w.-]+\.json\b", text):
        if not (ROOT / result).is_file():
            problems.append(f"{result} does not exist")
    for program, source, rest in commands(text):
        if source is None or not source.is_file():
            problems.append(f"{program}: no such module or script")
            continue
        code = source.read_text()
        generated = {"train.py": TRAIN_FLAGS, "predict.py": INFER_FLAGS}.get(source.name, set())
        problems += [
            f"{program}: no option {flag}"
            for flag in FLAG.findall(rest)
            if f'"{flag}"' not in code and flag not in generated
        ]
    for name in MODULE_CMD.findall(text):  # also those outside code spans
        if module_source(name) is None:
            problems.append(f"{name}: no such module or script")
    assert not problems, f"{page.name}: {list(dict.fromkeys(problems))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_paths_and_modules_exist(page: Path) -> None:
    generated = ignored_prefixes()
    missing = []
    for span in INLINE.findall(prose(page.read_text())):
        token = span.split()[0] if span.split() else ""
        if token.startswith(REPO_PREFIXES) and not PLACEHOLDER.search(token):
            if not token.startswith(generated) and not (ROOT / token).exists():
                missing.append(token)
        elif re.fullmatch(r"lib(\.\w+)+", span):
            path = ROOT.joinpath(*span.split("."))
            if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
                missing.append(span)
    assert not missing, f"{page.name}: named but not in the repository: {missing}"


def test_flags_named_in_prose_exist() -> None:
    """A flag quoted on its own (`--epochs`, `--init CHECKPOINT`) is one of a repository CLI's flags or
    one of the ``monailabel start_server`` flags the docs use (or argparse's ``--help``)."""
    sources = [*ROOT.glob("lib/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("sample-data/*.py")]
    code = "\n".join(p.read_text() for p in sources)
    known = {"--app", "--studies", "--conf", "--help"} | TRAIN_FLAGS | INFER_FLAGS
    unknown = []
    for page in PAGES:
        for span in INLINE.findall(prose(page.read_text())):
            if span.startswith("--"):
                flag = FLAG.match(span)
                if flag and flag.group(0) not in known and f'"{flag.group(0)}"' not in code:
                    unknown.append(f"{page.name}: {flag.group(0)}")
    assert not unknown, f"flags no command-line tool defines: {unknown}"


def test_code_map_names_existing_paths() -> None:
    missing = [p for p in code_map() if not (ROOT / p).exists()]
    assert not missing, f"README.md code map names paths that do not exist: {missing}"


def test_code_map_covers_every_module() -> None:
    listed = code_map()
    generated = ignored_prefixes()
    unlisted = []
    for folder in ("lib", "monailabel_app"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" or rel.startswith(generated):
                continue
            folders = [p for p in listed if p.endswith("/") and p != f"{folder}/"]
            if rel not in listed and not any(rel.startswith(p) for p in folders):
                unlisted.append(rel)
    assert not unlisted, f"README.md code map: add a line for {unlisted}"


def test_documented_options_are_read_by_the_code() -> None:
    """Every key in the README's --conf table and docs/training.md's train-option table occurs in the code
    as a quoted name or a (dataclass) field."""
    sources = [*(ROOT / "monailabel_app").rglob("*.py"), *(ROOT / "lib").rglob("*.py")]
    code = "\n".join(p.read_text() for p in sorted(sources))
    tables = {
        README: README.read_text().split("## Options", 1)[1].split("\n## ", 1)[0],
        ROOT / "docs/training.md": (ROOT / "docs/training.md").read_text().split("## Train options", 1)[1],
    }
    unread = []
    for page, section in tables.items():
        keys = re.findall(r"^\| `(\w+)` \|", section.split("\n## ", 1)[0], re.M)
        assert keys, f"{page.name}: no option table found"
        unread += [
            f"{page.name}: {k}" for k in keys if not re.search(rf"[\"']{k}[\"']|^\s+{k}\s*:", code, re.M)
        ]
    assert not unread, f"documented options no code reads: {unread}"
