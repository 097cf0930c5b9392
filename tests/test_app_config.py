"""The app's --conf options: typed parsing, clear refusals, and every option read by the app."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from monailabel_app.config import AppConfig

MAIN = Path(__file__).resolve().parents[1] / "monailabel_app" / "main.py"


def test_strings_become_typed_values_with_defaults_for_the_rest():
    config = AppConfig.from_conf(
        {"keep_versions": "3", "auto_update_scoring": "true", "max_upload_mb": "0.5", "labels": "a,b"}, "/m"
    )
    assert (config.keep_versions, config.auto_update_scoring, config.max_upload_mb) == (3, True, 0.5)
    assert config.model_dir == "/m" and config.backend == "auto" and config.epistemic_samples == 5
    assert config.model_conf() == {"labels": "a,b", "n4": "false"}


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"keep_versions": "many"}, "--conf keep_versions"),
        ({"auto_update_scoring": "maybe"}, "--conf auto_update_scoring: expected a boolean"),
        ({"keep_versions": "0"}, r"--conf keep_versions: 0 is outside \[1, "),
        ({"max_upload_mb": "-1"}, r"--conf max_upload_mb: -1.0 is outside \[0.001, "),
        ({"backend": "gpu"}, r"--conf backend: 'gpu'; valid: \['auto', 'fp32', 'bf16', 'onnx'\]"),
    ],
)
def test_bad_values_name_the_option(conf, message):
    with pytest.raises(ValueError, match=message):
        AppConfig.from_conf(conf, "/m")


def test_every_option_is_read_by_the_app():
    tree = ast.parse(MAIN.read_text())
    read = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "options"
    }
    model_keys = set(
        AppConfig.from_conf(
            {"models": "m", "labels": "a", "modality": "CT", "models_file": "f"}, "/m"
        ).model_conf()
    )
    assert "model_conf" in read
    assert {f.name for f in fields(AppConfig)} == (read - {"model_conf"}) | model_keys
