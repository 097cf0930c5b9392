"""Evaluate predicted label maps against ground truth: ``python -m lib.evaluate --pred DIR --truth DIR``.

Files (``.nii``, ``.nii.gz``, ``.nrrd``) are matched by name without extension; the truth's voxel
spacing is used for the surface distances. ``--labels`` is a JSON object ``{"liver": 1, ...}`` or
a path to one; by default every non-zero value found in any truth is scored, named by its value.
Prints a per-case, per-label table of every metric in :data:`lib.metrics.METRICS` with per-label
means and a summary; ``--out`` writes ``.json`` (:meth:`SegmentationMetrics.to_dict`, non-finite
numbers as the strings ``"inf"``/``"nan"``) or ``.csv`` (:meth:`SegmentationMetrics.table`).
Any input problem exits with status 1 and a one-line message. All maths lives in :mod:`lib.metrics`,
the label reader in :mod:`lib.io.label_map`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lib.io.atomic import atomic_path
from lib.io.label_map import LabelMapError, read_label_map
from lib.metrics import METRICS, SegmentationMetrics
from lib.metrics.table import json_safe

SUFFIXES = (".nii.gz", ".nii", ".nrrd")
OUT_SUFFIXES = (".json", ".csv")


class EvaluationError(Exception):
    """An input problem, reported to the user as a one-line message."""


def case_files(folder: Path) -> dict[str, Path]:
    """``{case name: path}`` of the label files in ``folder`` (other files are ignored)."""
    if not folder.is_dir():
        raise EvaluationError(f"not a directory: {folder}")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        case = path.name[: -len(suffix)]
        if case in files:
            raise EvaluationError(f"two files for case {case!r} in {folder}: {files[case].name}, {path.name}")
        files[case] = path
    if not files:
        raise EvaluationError(f"no .nii/.nii.gz/.nrrd files in {folder}")
    return files


def pair_files(pred_dir: Path, truth_dir: Path) -> dict[str, tuple[Path, Path]]:
    """``{case: (pred path, truth path)}``; raises unless every truth has a prediction and vice versa."""
    preds, truths = case_files(pred_dir), case_files(truth_dir)
    no_pred, no_truth = sorted(truths.keys() - preds.keys()), sorted(preds.keys() - truths.keys())
    if no_pred:
        raise EvaluationError(f"no prediction in {pred_dir} for truth case(s): {', '.join(no_pred)}")
    if no_truth:
        raise EvaluationError(f"no truth in {truth_dir} for prediction case(s): {', '.join(no_truth)}")
    return {case: (preds[case], truths[case]) for case in truths}


def parse_labels(text: str) -> dict[str, int]:
    """``{name: value}`` from a JSON object given inline or as a file path."""
    try:
        labels = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())
    except (OSError, ValueError) as e:
        raise EvaluationError(f"--labels is neither a JSON object nor a readable JSON file: {e}") from e
    valid = (
        isinstance(labels, dict)
        and labels
        and all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values())
    )
    if not valid:
        raise EvaluationError(
            f'--labels must be a non-empty JSON object of integers like {{"liver": 1}}, got {text}'
        )
    return labels


def labels_in_truth(truth_paths: Sequence[Path]) -> dict[str, int]:
    """Every non-zero value found in any truth, named by its value."""
    values = set()
    for path in truth_paths:
        values.update(np.unique(read_label_map(path)[0]).tolist())
    values.discard(0)
    if not values:
        raise EvaluationError("the truth label maps have no non-zero voxels; pass --labels")
    return {str(v): int(v) for v in sorted(values)}


def evaluate(pairs: dict[str, tuple[Path, Path]], labels: dict[str, int]) -> SegmentationMetrics:
    """Score every ``case: (pred path, truth path)`` with the truth's spacing."""
    metrics = SegmentationMetrics(labels)
    for case, (pred_path, truth_path) in pairs.items():
        pred, _ = read_label_map(pred_path)
        truth, spacing = read_label_map(truth_path)
        if pred.shape != truth.shape:
            raise EvaluationError(
                f"shape mismatch for case {case!r}: pred {pred.shape} vs truth {truth.shape}"
            )
        metrics.add(case, pred, truth, spacing)
    return metrics


def _cell(value: str | float) -> str:
    if isinstance(value, str | int):
        return str(value)
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def format_table(metrics: SegmentationMetrics) -> str:
    """The per-case table (with per-label "mean" and "excluded" rows) and the summary, as text."""
    columns = ("case", "label", *METRICS)
    rows = [list(columns)] + [[_cell(row[c]) for c in columns] for row in metrics.table()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    # names left-aligned, numbers right-aligned
    lines = [
        "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    summary = metrics.summary()
    lines.append(
        f"{summary['n_cases']} case(s), {len(metrics.labels)} label(s): "
        f"mean Dice {_cell(summary['mean_dice'])}, mean IoU {_cell(summary['mean_iou'])} "
        "(means skip inf/NaN values; see the 'excluded' rows)"
    )
    return "\n".join(lines)


def write_results(metrics: SegmentationMetrics, out: Path) -> None:
    """Write ``out`` atomically: ``.json`` holds ``metrics.to_dict()``, ``.csv`` holds ``metrics.table()``."""
    try:
        with atomic_path(out, suffix=out.suffix) as tmp, open(tmp, "w", newline="") as f:
            if out.suffix == ".json":
                json.dump(json_safe(metrics.to_dict()), f, indent=2, allow_nan=False)
            else:
                writer = csv.DictWriter(f, fieldnames=["case", "label", *METRICS])
                writer.writeheader()
                writer.writerows(metrics.table())
    except OSError as e:
        raise EvaluationError(f"cannot write {out}: {e}") from e


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0, or 1 after printing a one-line error to stderr)."""
    parser = argparse.ArgumentParser(prog="python -m lib.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--pred", type=Path, required=True, help="folder of predicted label maps")
    parser.add_argument("--truth", type=Path, required=True, help="folder of ground-truth label maps")
    parser.add_argument(
        "--labels", help="JSON object or file, e.g. '{\"liver\": 1}' (default: values in truth)"
    )
    parser.add_argument("--out", type=Path, help="write the results to FILE.json or FILE.csv")
    args = parser.parse_args(argv)
    try:
        if args.out is not None and args.out.suffix not in OUT_SUFFIXES:
            raise EvaluationError(f"--out must end in .json or .csv, got {args.out}")
        pairs = pair_files(args.pred, args.truth)
        labels = parse_labels(args.labels) if args.labels else labels_in_truth([t for _, t in pairs.values()])
        metrics = evaluate(pairs, labels)
        print(format_table(metrics))
        if args.out is not None:
            write_results(metrics, args.out)
    except (EvaluationError, LabelMapError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
