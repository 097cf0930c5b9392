"""Known-answer tests for lib.training.early_stopping."""

import math

import pytest

from lib.training.early_stopping import EarlyStopping


def _run(stopper: EarlyStopping, values: list[float]) -> list[bool]:
    return [stopper.step(v) for v in values]


def test_mode_max_stops_after_patience_bad_epochs():
    stopper = EarlyStopping(patience=3)
    assert not stopper.stopped
    assert _run(stopper, [0.1, 0.5, 0.4, 0.5, 0.45]) == [False] * 4 + [True]
    assert (stopper.best, stopper.best_epoch, stopper.counter, stopper.stopped) == (0.5, 1, 3, True)


def test_mode_max_counter_resets_on_improvement():
    stopper = EarlyStopping(patience=2)
    assert _run(stopper, [0.1, 0.1, 0.2, 0.2, 0.3, 0.2, 0.2]) == [False] * 6 + [True]
    assert (stopper.best, stopper.best_epoch, stopper.counter) == (0.3, 4, 2)


def test_mode_min_with_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.1, mode="min")
    # 0.95 and 0.91 are within min_delta of 1.0 (no improvement); 0.85 improves; 0.8 does not.
    assert _run(stopper, [1.0, 0.95, 0.85, 0.8, 0.76]) == [False, False, False, False, True]
    assert (stopper.best, stopper.best_epoch) == (0.85, 2)


def test_mode_max_min_delta_is_strict():
    stopper = EarlyStopping(patience=1, min_delta=0.05)
    assert _run(stopper, [0.5, 0.55]) == [False, True]  # 0.55 is not > 0.5 + 0.05
    assert stopper.best == 0.5


def test_nan_is_never_an_improvement_and_stopped_is_sticky():
    stopper = EarlyStopping(patience=2)
    assert _run(stopper, [math.nan, 0.3, math.nan, math.nan, 0.9]) == [False, False, False, True, True]
    assert (stopper.best, stopper.best_epoch, stopper.counter) == (0.9, 4, 0)


def test_state_dict_round_trip():
    stopper = EarlyStopping(patience=3, mode="min")
    _run(stopper, [1.0, 0.5, 0.7])
    resumed = EarlyStopping(patience=3, mode="min")
    resumed.load_state_dict(stopper.state_dict())
    assert _run(resumed, [0.6, 0.6]) == [False, True]
    assert (resumed.best, resumed.best_epoch) == (0.5, 1)


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"min_delta": -1.0}, {"mode": "median"}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)
