"""Training the click-guided twin: simulated click rounds on the network's own errors, and the guidance
its validation cases carry.

DeepEdit's recipe (MONAI's ``deepedit`` interaction), done on the batch: a patch arrives with its first
clicks drawn from the label (:class:`~lib.interactive.simulation.RandClickGuidanced`); on a share of the
batches the network then predicts with that guidance, the simulated annotator clicks the largest error
of each patch (:func:`~lib.interactive.simulation.next_click`), the click is drawn into its guidance
channel, and so on for a few rounds, before the training step learns from the final guidance. So the
network sees clicks placed where it was wrong, as an annotator's corrections are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lib.interactive.guidance import SIGMA, Clicks, draw_blob, guidance_channels
from lib.interactive.simulation import deepest_voxel, next_click


class ClickRounds:
    """Error-driven click rounds on a training batch: ``(network, image, label) -> image``.

    ``image`` is (B, 1 + N + 1, *spatial) (the image, then the guidance channels: background, then each
    label value), ``label`` (B, 1, *spatial). With probability ``prob`` a batch gets 1..``max_rounds``
    rounds (uniform); each round runs ``network`` without gradients (in eval mode, restored after) and
    adds one click per patch that still has an error, at the deepest voxel of its largest error region,
    into its channel (:func:`next_click`'s correction: background for a false positive). The image
    is changed in place and returned.

    >>> labels = {"organ": 1}
    >>> image = torch.zeros(1, 3, 8, 8); label = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    >>> label[0, 0, 2:6, 2:6] = 1
    >>> blank = lambda x: torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], 1)
    >>> out = ClickRounds(labels, max_rounds=1, prob=1.0, seed=0)(blank, image, label)
    >>> float(out[0, 2].max()), float(out[0, 1].max())  # the missed organ got a foreground click
    (1.0, 0.0)
    """

    def __init__(
        self,
        labels: Mapping[str, int],
        max_rounds: int = 2,
        prob: float = 0.5,
        sigma: float | Sequence[float] = SIGMA,
        seed: int = 0,
    ) -> None:
        if max_rounds < 1 or not 0.0 <= prob <= 1.0:
            raise ValueError(f"need max_rounds >= 1 and prob in [0, 1], got {max_rounds}, {prob}")
        self.labels = dict(labels)
        self.max_rounds = max_rounds
        self.prob = prob
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)

    def __call__(self, network: torch.nn.Module, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.rng.random() >= self.prob:
            return image
        rounds = int(self.rng.integers(1, self.max_rounds + 1))
        truth = label[:, 0].cpu().numpy()
        was_training = getattr(network, "training", False)
        if hasattr(network, "eval"):
            network.eval()
        try:
            for _ in range(rounds):
                with torch.no_grad():
                    prediction = network(image).argmax(1).cpu().numpy()
                if not self._click(image, prediction, truth):
                    break
        finally:
            if was_training:
                network.train()
        return image

    def _click(self, image: torch.Tensor, prediction: np.ndarray, truth: np.ndarray) -> bool:
        """Add each patch's next correction to ``image``; False when no patch has an error left."""
        clicked = False
        for b in range(len(truth)):
            click = next_click(prediction[b], truth[b], self.labels)
            if click is None:
                continue
            channel = 1 + (self.labels[click.label] if click.kind == "foreground" else 0)
            guidance = image[b, channel].float().cpu().numpy()
            draw_blob(guidance, click.point, self.sigma)
            image[b, channel] = torch.from_numpy(guidance).to(image.dtype)
            clicked = True
        return clicked


def validation_clicks(truth: np.ndarray, labels: Mapping[str, int]) -> Clicks:
    """One click per label present in ``truth`` (a label map), at its deepest voxel: the deterministic
    guidance a twin is validated with beside its auto mode.

    >>> validation_clicks(np.array([0, 1, 1, 1, 0, 2]), {"a": 1, "b": 2, "c": 3})
    Clicks(foreground={'a': [(2,)], 'b': [(5,)], 'c': []}, background=[], label=None)
    """
    return Clicks(
        {
            name: [deepest_voxel(truth == value)] if (truth == value).any() else []
            for name, value in sorted(labels.items(), key=lambda item: item[1])
        }
    )


def with_guidance(image: torch.Tensor, clicks: Clicks, labels: Mapping[str, int]) -> torch.Tensor:
    """``image`` (1, *spatial) with the guidance channels of ``clicks`` appended (a MetaTensor stays one)."""
    guidance = guidance_channels(clicks, labels, tuple(image.shape[1:]))
    return torch.cat([image, torch.as_tensor(guidance, dtype=image.dtype)])
