"""Epistemic uncertainty by Monte-Carlo dropout, for active learning."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.inference.predictor import predict_logits


def enable_mc_dropout(network: torch.nn.Module) -> int:
    """Eval mode with only the dropout layers (p > 0) sampling; returns how many layers sample."""
    network.eval()
    dropouts = [
        m for m in network.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
    ]
    for m in dropouts:
        m.train()
    return len(dropouts)


def mc_dropout_entropy(
    network: torch.nn.Module,
    image: torch.Tensor,
    roi_size: tuple[int, ...],
    samples: int = 5,
    downsample: int = 1,
    backend: str = "fp32",
) -> float:
    """Mean predictive entropy (nats) of ``samples`` MC-dropout passes over ``image`` (1, *spatial).

    The entropy of the mean softmax is averaged over the voxels that any pass labels as foreground
    (0.0 when none does), so the score does not shrink with the amount of background. ``downsample``
    > 1 average-pools the input first (faster scoring at lower fidelity). The network is left in eval
    mode. Raises ``ValueError`` when the network has no dropout layers (every pass would be equal).
    """
    if samples < 2:
        raise ValueError("MC dropout needs at least 2 samples")
    if enable_mc_dropout(network) == 0:
        network.eval()
        raise ValueError("network has no dropout layers; build it with dropout > 0 for MC dropout")
    x = image.float()
    if downsample > 1:
        pool = F.avg_pool3d if x.ndim == 4 else F.avg_pool2d
        x = pool(x.unsqueeze(0), downsample).squeeze(0)
    try:
        probs = [torch.softmax(predict_logits(network, x, roi_size, backend), dim=0) for _ in range(samples)]
    finally:
        network.eval()
    stacked = torch.stack(probs)
    mean = stacked.mean(dim=0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-8))).sum(dim=0)
    foreground = (stacked.argmax(dim=1) > 0).any(dim=0)
    return float(entropy[foreground].mean()) if foreground.any() else 0.0
