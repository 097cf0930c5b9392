"""Every inference option in one typed place (:class:`lib.io.options.Options`): the predictor's defaults,
what the server's ``/infer`` takes per request and what ``/info`` lists for each model."""

from __future__ import annotations

from dataclasses import dataclass

from lib.io.options import Options, option


@dataclass(frozen=True)
class InferConfig(Options):
    """Per-request inference options with their defaults."""

    ERROR = "invalid infer option {}"

    largest_component: bool = option(True, "keep only the largest connected component of each label")
    overlap: float = option(
        0.25, "sliding-window overlap (more: smoother window borders, slower)", low=0, high=0.9
    )
    mirror: bool = option(
        True,
        "test-time mirroring: also segment the left-right mirror image and average (paired labels "
        "swapped); only where the plan found the anatomy symmetric; twice the network time",
    )
    sw_batch_size: int = option(2, "sliding windows per forward pass (memory against speed)", low=1, high=64)


#: the defaults, as every caller that passes nothing gets them
DEFAULTS = InferConfig()
