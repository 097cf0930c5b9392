"""Train options as clients send them: strings, defaults, and refusals."""

import pytest

from monailabel_app.tasks.train import parse_options


def test_defaults_keep_the_optimizers_documented_learning_rate():
    config, data = parse_options({})
    assert config.optimizer == "adamw" and config.lr is None and config.scheduler == "cosine"
    assert data["multi_gpu"] is False and data["pretrained"] is True
    config, _ = parse_options({"optimizer": "sgd", "lr": "0.02", "amp": "false", "max_epochs": "3"})
    assert config.lr == 0.02 and config.amp is False and config.max_epochs == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "magic"},
        {"lr": "abc"},
        {"lr": 5},
        {"max_epochs": 0},
        {"val_split": 0.95},
        {"multi_gpu": True, "num_processes": 1},
    ],
)
def test_invalid_options_are_refused(bad):
    with pytest.raises(ValueError, match="invalid train option"):
        parse_options(bad)
