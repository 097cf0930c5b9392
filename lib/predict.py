"""Segment every image of a folder with a model, without a viewer or a server.

    python -m lib.predict --model ct_organs --input scans/ --output labels/
    python -m lib.predict --model runs/ct_organs/v0003.pt --input scans/ --output labels/

``--model`` is a preset name (its shipped checkpoint) or a checkpoint file (e.g. a published
``vNNNN.pt``). Images are NIfTI, NRRD or PNG files, or sub-folders holding one DICOM series each;
each label is written atomically to ``--output`` under the image's name (DICOM series and JPEG images
as ``<name>.nii.gz`` / ``<name>.png``) on the image's own grid, through the same inference path as the
server (:class:`lib.inference.predictor.Predictor`). Labels already in ``--output`` are kept unless
``--overwrite``; an image that cannot be segmented is reported and the others go on. A JSON summary is
printed; the exit status is 1 when any image failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from lib.hardware import bf16_supported
from lib.inference.config import DEFAULTS, InferConfig
from lib.inference.predictor import BACKENDS, ImageReadError, Predictor
from lib.inference.writer import write_label
from lib.io.errors import root_cause
from lib.planning.presets import PRESETS, load_model, shipped_checkpoint

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".png", ".jpg", ".jpeg")


def load_predictor(
    model: str, backend: str | None = None, config: InferConfig = DEFAULTS
) -> tuple[Predictor, str]:
    """A :class:`Predictor` for a preset name (its shipped checkpoint) or a checkpoint path, running
    with ``config``, and the checkpoint's path. ``backend`` defaults to bf16 where the CPU has it
    natively, else fp32."""
    path = shipped_checkpoint(model) or Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {str(path)!r} (a preset {sorted(PRESETS)} or a .pt file)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    known = isinstance(checkpoint, dict) and (checkpoint.get("plan") or checkpoint.get("preset") in PRESETS)
    if not known:
        raise ValueError(f"{path}: not a checkpoint of this project (no plan and no known 'preset' entry)")
    preset, network, _ = load_model(checkpoint, PRESETS.get(checkpoint.get("preset")))
    backend = backend or ("bf16" if bf16_supported() else "fp32")
    return Predictor(preset, network, backend=backend, config=config), str(path)


def find_images(folder: Path) -> list[tuple[Path, str]]:
    """(image, label file name) for every image file and DICOM series sub-folder of ``folder``."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and any(p.is_file() for p in entry.iterdir()):
            found.append((entry, f"{entry.name}.nii.gz"))
        elif entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS):
            stem = entry.name[: -len(next(e for e in IMAGE_EXTENSIONS if entry.name.lower().endswith(e)))]
            out = f"{stem}.png" if entry.name.lower().endswith((".jpg", ".jpeg")) else entry.name
            found.append((entry, out))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lib.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help=f"preset ({', '.join(PRESETS)}) or checkpoint file")
    parser.add_argument("--input", required=True, type=Path, help="folder of images")
    parser.add_argument("--output", required=True, type=Path, help="folder for the labels")
    parser.add_argument(
        "--backend", choices=[b for b in BACKENDS if b != "onnx"], help="default: bf16 if native, else fp32"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace labels already in --output")
    InferConfig.add_arguments(parser, "inference options (as the server's /infer takes them)")
    args = parser.parse_args(argv)
    if not args.input.is_dir():
        print(f"error: --input {str(args.input)!r} is not a folder", file=sys.stderr)
        return 2
    try:
        config = InferConfig.from_arguments(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        predictor, checkpoint = load_predictor(args.model, args.backend, config)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: --model: {e}", file=sys.stderr)
        return 2
    images = find_images(args.input)
    if not images:
        print(
            f"error: no images in {str(args.input)!r} ({', '.join(IMAGE_EXTENSIONS)} or DICOM folders)",
            file=sys.stderr,
        )
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    written, skipped, failed = [], [], {}
    for image, name in tqdm(images, desc=f"{predictor.preset.name}", unit="image", file=sys.stderr):
        out = args.output / name
        if out.exists() and not args.overwrite:
            skipped.append(name)
            continue
        try:
            prediction = predictor(str(image))
            write_label(prediction.label, prediction.affine, os.fspath(out))
            written.append(name)
        except Exception as e:  # one bad image must not end the run: report it and go on
            failed[image.name] = str(e) if isinstance(e, ImageReadError) else root_cause(e)
            tqdm.write(f"{image.name}: {failed[image.name]}", file=sys.stderr)
    summary = {
        "model": predictor.preset.name,
        "checkpoint": checkpoint,
        "backend": predictor.backend,
        "options": asdict(config),
        "output": str(args.output),
        "written": written,
        "skipped": skipped,
        "failed": failed,
    }
    print(json.dumps(summary, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
