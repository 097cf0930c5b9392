"""The README's code map lists ``lib/`` in dependency order: every import inside ``lib/`` goes to a stage
listed above the importing one, and no library, app or bench module imports a command-line module.
Source is parsed, not imported."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_docs import ROOT, code_map

LIB = ROOT / "lib"


def stage_of(rel: str) -> str:
    """``lib/data/split.py`` -> ``data``; ``lib/train.py`` -> ``train``."""
    return Path(rel).parts[1].removesuffix(".py")


def lib_imports(path: Path) -> set[str]:
    """The ``lib.<stage>`` stages a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(n.split(".")[1] for n in names if n.startswith("lib.") and n.count(".") >= 1)
    return found


def cli_modules() -> set[str]:
    """Top-level ``lib/*.py`` modules with a ``__main__`` block."""
    return {p.stem for p in LIB.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()}


def test_every_import_goes_to_a_stage_listed_earlier():
    order = list(dict.fromkeys(stage_of(p) for p in code_map() if p.startswith("lib/") and p != "lib/"))
    backwards = []
    for path in sorted(LIB.rglob("*.py")):
        own = stage_of(path.relative_to(ROOT).as_posix())
        if own == "__init__":
            continue
        for other in lib_imports(path) - {own}:
            if order.index(other) > order.index(own):
                backwards.append(f"{path.relative_to(ROOT)} imports lib.{other}")
    assert not backwards, f"imports against the code map's order: {backwards}"


def test_nothing_imports_a_command_line_module():
    clis = cli_modules()
    assert {"train", "predict", "evaluate", "synthesize"} <= clis
    offenders = [
        f"{path.relative_to(ROOT)} imports lib.{stage}"
        for folder in ("lib", "monailabel_app", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for stage in lib_imports(path) & clis
        if path.stem != stage
    ]
    assert not offenders, offenders
