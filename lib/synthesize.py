"""Write training cases made from a label map without an image (:mod:`lib.data.templates`) as a folder
datastore, e.g. to train a CT model on real organ shapes:

    python -m lib.synthesize --template torso_labels.nii.gz \
        --template-labels '{"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 6, "stomach": 7}' \
        --labels liver,spleen,kidney_left,kidney_right --count 8 --out runs/templates

``--template-labels`` names the template's values (a JSON object, MONAI Label's convention); those that
are model labels (``--labels``, values 1..N in that order, or a preset's with ``--preset``) become the
case labels, the others are drawn as neighbouring structures. Each case is ``template_NNN.nii.gz`` with
its label in ``labels/final/`` (written atomically); ``python -m lib.train --train-also`` adds such a
folder to the training cases only. A JSON line per case is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lib.data.templates import template_case
from lib.inference.writer import write_label
from lib.io.validate import read_volume
from lib.planning.definitions import parse_labels
from lib.planning.presets import PRESETS


def template_names(text: str) -> dict[str, int]:
    """``{"name": value, ...}`` (values > 0) from a JSON object, else ValueError."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"template labels: malformed JSON ({e})") from None
    if not isinstance(names, dict) or not names:
        raise ValueError('template labels: give a JSON object {"name": value, ...}')
    for name, value in names.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"template labels: value of {name!r} must be an integer > 0, got {value!r}")
    return {str(k): int(v) for k, v in names.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", required=True, type=Path, help="label map (NIfTI, NRRD, ...), no image")
    parser.add_argument("--template-labels", required=True, help='its values by name: {"liver": 6, ...}')
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--labels", help="the model's labels, a,b,c (values 1..N)")
    model.add_argument("--preset", choices=sorted(PRESETS), help="take the labels of this preset")
    parser.add_argument("--count", type=int, default=8, help="number of cases")
    parser.add_argument("--out", required=True, type=Path, help="datastore folder to write into")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.5, 1.5, 3.0), help="voxel size (mm)")
    parser.add_argument("--seed", type=int, default=0, help="case k is drawn from seed + k")
    args = parser.parse_args(argv)
    try:
        names = template_names(args.template_labels)
        labels = PRESETS[args.preset].labels if args.preset else parse_labels(args.labels)
        if args.count < 1 or min(args.spacing) <= 0:
            raise ValueError("--count must be >= 1 and --spacing > 0")
    except ValueError as e:
        parser.error(str(e))
    try:
        data, template_affine = read_volume(str(args.template))  # NIfTI, NRRD, ... as float32
    except ValueError as e:
        print(f"error: {args.template}: {e}", file=sys.stderr)
        return 1
    if data.ndim != 3 or data.min() < 0 or not np.array_equal(data, np.round(data)):
        print(
            f"error: {args.template}: need a 3-D label map of integers >= 0, got shape {data.shape}",
            file=sys.stderr,
        )
        return 1
    data = data.astype(np.int64)
    for k in range(args.count):
        try:
            image, label, affine = template_case(
                data,
                template_affine,
                names,
                labels,
                tuple(args.spacing),
                np.random.default_rng(args.seed + k),
            )
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        name = f"template_{k:03d}.nii.gz"
        write_label(label, affine, str(args.out / "labels" / "final" / name))
        write_label(image, affine, str(args.out / name), dtype="int16")  # last: a datastore lists images
        counts = {n: int((label == v).sum()) for n, v in labels.items()}
        print(json.dumps({"case": name, "shape": list(image.shape), "voxels": counts}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
