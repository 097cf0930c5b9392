"""Map class scores from the working grid back onto an image's own voxel grid."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def restore_labels(
    logits: torch.Tensor,
    src_affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_shape: tuple[int, ...],
    slab: int = 16,
) -> np.ndarray:
    """Resample class scores onto another grid and take the argmax there, slab by slab.

    ``logits``: (C, X, Y, Z) scores on the grid whose voxel->world matrix is ``src_affine`` (4x4);
    2-D scores (C, X, Y) with a 2-D ``dst_shape`` are handled as one-slice volumes.
    ``dst_affine`` / ``dst_shape``: the target grid (any orientation and spacing). Scores are trilinearly
    interpolated at each target voxel centre (clamped at the source border), so boundaries are
    placed at sub-voxel precision and memory stays bounded by one slab of ``slab`` target slices.
    Returns a uint8 label map of ``dst_shape``.
    """
    if logits.ndim == 3 and len(dst_shape) == 2:
        return restore_labels(logits[..., None], src_affine, dst_affine, (*dst_shape, 1), slab)[..., 0]
    if logits.ndim != 4 or len(dst_shape) != 3:
        raise ValueError("restore_labels expects (C, X, Y[, Z]) logits and a target shape of the same rank")
    src_shape = np.array(logits.shape[1:], dtype=np.float64)
    to_src = np.linalg.inv(np.asarray(src_affine, np.float64)) @ np.asarray(dst_affine, np.float64)
    # grid_sample wants normalised coords (align_corners=True) in reversed axis order (z, y, x)
    scale = 2.0 / np.maximum(src_shape - 1, 1)
    norm = np.diag([*scale, 1.0]) @ to_src
    norm[:3, 3] -= 1.0
    norm = torch.as_tensor(norm[[2, 1, 0]], dtype=torch.float32)  # rows: z, y, x
    vol = logits.float().unsqueeze(0)  # (1, C, X, Y, Z) read as (N, C, D, H, W)
    nx, ny, nz = dst_shape
    ii, jj = torch.meshgrid(
        torch.arange(nx, dtype=torch.float32), torch.arange(ny, dtype=torch.float32), indexing="ij"
    )
    out = np.empty(dst_shape, dtype=np.uint8)
    for z0 in range(0, nz, slab):
        kk = torch.arange(z0, min(z0 + slab, nz), dtype=torch.float32)
        idx = torch.stack(torch.broadcast_tensors(ii[..., None], jj[..., None], kk[None, None, :]), dim=-1)
        grid = idx @ norm[:, :3].T + norm[:, 3]  # (X, Y, k, 3)
        scores = F.grid_sample(
            vol, grid.unsqueeze(0), mode="bilinear", padding_mode="border", align_corners=True
        )
        out[:, :, z0 : z0 + kk.numel()] = scores[0].argmax(dim=0).to(torch.uint8).numpy()
    return out
