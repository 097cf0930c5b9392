"""Backend selection and the parity guard; ONNX export with dynamic axes."""

import pytest
import torch

from lib.export import dynamic_quantization_report
from lib.hardware import bf16_supported
from lib.inference import backends
from lib.inference.backends import OnnxRunner, available_backends, choose_backend, export_onnx
from lib.networks.unet import build_unet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_unet(3, 1, 3, channels=(4, 8, 16), num_res_units=1).eval()


def test_onnx_export_has_dynamic_batch_and_spatial_axes(net, tmp_path):
    runner = OnnxRunner(export_onnx(net, str(tmp_path / "m.onnx"), 3))
    for shape in [(1, 1, 32, 32, 16), (2, 1, 48, 40, 24)]:
        x = torch.randn(shape)
        with torch.no_grad():
            ref = net(x)
        out = runner(x)
        assert out.shape == ref.shape
        assert float((out - ref).abs().max()) < 1e-3


def test_auto_picks_the_fastest_backend_that_passes_parity(net, tmp_path):
    sample = torch.randn(1, 32, 32, 16)
    backend, runner, report = choose_backend(net, "auto", sample, (32, 32, 16), str(tmp_path / "m.onnx"))
    assert backend == available_backends()[0] == ("bf16" if bf16_supported() else "fp32")
    assert backend == "fp32" or report[backend] >= 0.99


def test_auto_serves_fp32_on_a_cpu_without_bf16(net, tmp_path, monkeypatch):
    # ONNX Runtime measured slower than eager fp32 (SPEED_ORDER): without bf16, auto must not export it
    monkeypatch.setattr(backends, "bf16_supported", lambda: False)
    assert backends.available_backends() == ["fp32", "onnx"]
    onnx_path = tmp_path / "m.onnx"
    backend, runner, report = choose_backend(
        net, "auto", torch.randn(1, 32, 32, 16), (32, 32, 16), str(onnx_path)
    )
    assert (backend, runner, report) == ("fp32", net, {}) and not onnx_path.exists()


def test_a_backend_failing_agreement_is_refused(net, tmp_path):
    sample = torch.randn(1, 32, 32, 16)
    backend, runner, report = choose_backend(
        net, "onnx", sample, (32, 32, 16), str(tmp_path / "m.onnx"), threshold=1.01
    )
    assert backend == "fp32" and runner is net and report["onnx"] < 1.01
    backend, _, report = choose_backend(
        net, "auto", sample, (32, 32, 16), str(tmp_path / "m.onnx"), threshold=1.01
    )
    assert backend == "fp32" and set(report) == ({"bf16"} if bf16_supported() else set())
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend(net, "tpu", sample, (32, 32, 16), str(tmp_path / "m.onnx"))


def test_dynamic_quantization_leaves_convolutions_alone(net):
    report = dynamic_quantization_report(net)
    assert report["modules_quantized"] == 0 and report["conv_layers_left_fp32"] > 0
