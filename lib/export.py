"""Export a checkpoint to ONNX and report, honestly, what each speed-up option does on this CPU.

    python -m lib.export --checkpoint monailabel_app/pretrained/ct_organs.pt --out runs/ct_organs.onnx \
        --image sample-data/ct/case_011.nii.gz [--int8]

Prints one JSON report: ONNX parity with eager fp32 (max abs difference, argmax agreement) and the
latency of eager fp32, CPU bf16 autocast and ONNX Runtime on one patch; what dynamic quantisation
changes (torch's dynamic quantisation covers Linear/RNN layers only, so a convolutional U-Net keeps
every Conv layer in fp32); with ``--int8``, static int8 (ONNX Runtime QDQ, calibrated on patches of
the image) measured and marked ``offered`` only when at least 10 % faster than ONNX Runtime fp32 (less
is timing noise) at argmax agreement >= 0.99.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from lib.hardware import bf16_supported
from lib.inference.backends import OnnxRunner, argmax_agreement, export_onnx
from lib.inference.geometry import centre_patch
from lib.inference.predictor import Predictor
from lib.planning.presets import PRESETS, load_model

MIN_SPEEDUP = 1.1


def _latency(fn: Callable[[], object], repeats: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def dynamic_quantization_report(network: torch.nn.Module) -> dict[str, object]:
    """Run torch dynamic quantisation and count what it changed."""
    quantized = torch.ao.quantization.quantize_dynamic(
        network, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8
    )
    convs = sum(isinstance(m, torch.nn.modules.conv._ConvNd) for m in quantized.modules())
    changed = sum("quantized" in type(m).__module__ for m in quantized.modules())
    return {
        "modules_quantized": changed,
        "conv_layers_left_fp32": convs,
        "note": "dynamic quantisation covers Linear/RNN layers only; a U-Net's convolutions are unchanged",
    }


def static_int8_report(
    onnx_path: str, patches: list[np.ndarray], reference: torch.Tensor, x: torch.Tensor, fp32_seconds: float
) -> dict[str, object]:
    """Quantise the ONNX model statically (QDQ int8), then measure agreement and latency."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"image": p} for p in patches])

        def get_next(self):
            return next(self.items, None)

    out = onnx_path.replace(".onnx", ".int8.onnx")
    quantize_static(onnx_path, out, Reader(), quant_format=QuantFormat.QDQ)
    runner = OnnxRunner(out)
    agreement = argmax_agreement(reference[0], runner(x)[0])
    seconds = _latency(lambda: runner(x))
    return {
        "path": out,
        "argmax_agreement": agreement,
        "seconds": seconds,
        "speedup_vs_ort_fp32": fp32_seconds / seconds,
        "offered": bool(agreement >= 0.99 and fp32_seconds / seconds >= MIN_SPEEDUP),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--image", required=True, help="an image to take a realistic patch from")
    parser.add_argument("--int8", action="store_true", help="also measure static int8 quantisation")
    args = parser.parse_args(argv)

    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    preset, network, _ = load_model(checkpoint, PRESETS.get(checkpoint.get("preset")))
    network.eval()
    image, _, _ = Predictor(preset, network).preprocess(args.image)
    patch = centre_patch(image, preset.patch_size)
    x = torch.zeros((1, 1, *preset.patch_size))
    x[(0, slice(None), *(slice(0, s) for s in patch.shape[1:]))] = patch.as_tensor()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export_onnx(network, args.out, preset.spatial_dims)
    ort = OnnxRunner(args.out)
    with torch.no_grad():
        reference = network(x)
        onnx_out = ort(x)
        report: dict[str, object] = {
            "onnx": {
                "path": args.out,
                "opset": 17,
                "dynamic_axes": "batch and spatial",
                "max_abs_diff": float((onnx_out - reference).abs().max()),
                "argmax_agreement": argmax_agreement(reference[0], onnx_out[0]),
            },
            "latency_seconds_per_patch": {
                "eager_fp32": _latency(lambda: network(x)),
                "onnxruntime_fp32": _latency(lambda: ort(x)),
            },
        }
        if bf16_supported():

            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return network(x).float()

            report["latency_seconds_per_patch"]["eager_bf16_autocast"] = _latency(bf16)
            report["bf16_argmax_agreement"] = argmax_agreement(reference[0], bf16()[0])
    report["dynamic_quantization"] = dynamic_quantization_report(network)
    if args.int8:
        patches = [x.numpy(), (x + 0.01 * torch.randn_like(x)).numpy()]
        report["static_int8"] = static_int8_report(
            args.out, patches, reference, x, report["latency_seconds_per_patch"]["onnxruntime_fp32"]
        )
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
