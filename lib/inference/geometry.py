"""Map class scores from the working grid back onto an image's own voxel grid."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F


def foreground_box(
    label: np.ndarray, src_to_dst: np.ndarray, dst_shape: tuple[int, ...]
) -> tuple[slice, ...] | None:
    """Target-grid box outside which trilinear restoration of ``label``'s scores is all background.

    ``label``: (X, Y, Z) argmax on the source grid; ``src_to_dst``: 4x4 source-voxel -> target-voxel
    matrix. Interpolation weights reach one source voxel around the foreground, so the foreground's
    bounding box widened by one voxel (unbounded where it touches the source border, because the
    scores are clamped there) contains every target voxel that can see a foreground score; a convex
    mix of score vectors that all rank background first ranks background first too. Returns None
    when there is no foreground.
    """
    fg = np.nonzero(label)
    if fg[0].size == 0:
        return None
    lo = np.array([a.min() - 1.0 for a in fg])
    hi = np.array([a.max() + 1.0 for a in fg])
    far = 1e7
    lo[lo < 0] = -far
    hi[hi > np.array(label.shape) - 1] = far
    corners = np.array([[*c, 1.0] for c in itertools.product(*zip(lo, hi, strict=True))]) @ src_to_dst.T
    start = np.clip(np.floor(corners[:, :3].min(axis=0)), 0, dst_shape).astype(int)
    stop = np.clip(np.ceil(corners[:, :3].max(axis=0)) + 1, 0, dst_shape).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


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
    placed at sub-voxel precision. Only the target box that can hold foreground is interpolated (see
    :func:`foreground_box`; the rest is background by construction), and memory stays bounded by
    one slab of ``slab`` target slices. Returns a uint8 label map of ``dst_shape``.
    """
    if logits.ndim == 3 and len(dst_shape) == 2:
        return restore_labels(logits[..., None], src_affine, dst_affine, (*dst_shape, 1), slab)[..., 0]
    if logits.ndim != 4 or len(dst_shape) != 3:
        raise ValueError("restore_labels expects (C, X, Y[, Z]) logits and a target shape of the same rank")
    out = np.zeros(dst_shape, dtype=np.uint8)
    src_affine = np.asarray(src_affine, np.float64)
    dst_affine = np.asarray(dst_affine, np.float64)
    box = foreground_box(logits.argmax(dim=0).numpy(), np.linalg.inv(dst_affine) @ src_affine, dst_shape)
    if box is None or any(s.start >= s.stop for s in box):
        return out
    src_shape = np.array(logits.shape[1:], dtype=np.float64)
    to_src = np.linalg.inv(src_affine) @ dst_affine
    # grid_sample wants normalised coords (align_corners=True) in reversed axis order (z, y, x)
    scale = 2.0 / np.maximum(src_shape - 1, 1)
    norm = np.diag([*scale, 1.0]) @ to_src
    norm[:3, 3] -= 1.0
    norm = torch.as_tensor(norm[[2, 1, 0]], dtype=torch.float32)  # rows: z, y, x
    vol = logits.float().unsqueeze(0)  # (1, C, X, Y, Z) read as (N, C, D, H, W)
    bx, by, bz = box
    ii, jj = torch.meshgrid(
        torch.arange(bx.start, bx.stop, dtype=torch.float32),
        torch.arange(by.start, by.stop, dtype=torch.float32),
        indexing="ij",
    )
    for z0 in range(bz.start, bz.stop, slab):
        kk = torch.arange(z0, min(z0 + slab, bz.stop), dtype=torch.float32)
        idx = torch.stack(torch.broadcast_tensors(ii[..., None], jj[..., None], kk[None, None, :]), dim=-1)
        grid = idx @ norm[:, :3].T + norm[:, 3]  # (x, y, k, 3)
        scores = F.grid_sample(
            vol, grid.unsqueeze(0), mode="bilinear", padding_mode="border", align_corners=True
        )
        out[bx, by, z0 : z0 + kk.numel()] = scores[0].argmax(dim=0).to(torch.uint8).numpy()
    return out
