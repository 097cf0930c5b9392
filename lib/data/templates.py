"""Training cases made from a label map that has no image (a template: another scan's segmentation, an
atlas), so a model sees real organ shapes and their neighbours in images no scanner made (SynthSeg's idea,
Billot et al., MedIA 2023, applied to a single real label map).

* :func:`rename_template`: the template's values mapped to the model's labels by name; its other
  structures become extra tissues that get their own intensity but are background to the model;
* :func:`deform`: the template under a random affine (scaling, rotation) and a smooth displacement,
  resampled onto a scanner-like grid (the one-hot channels interpolated linearly, so 5 mm slices come out
  as smooth shapes, not steps) and cropped at random along the body axis;
* :func:`render_ct`: a CT-like image (HU) of such a tissue map inside a body made around it (skin,
  subcutaneous fat, muscle, a bright rod where the spine lies, clutter for bowel), each tissue's HU drawn
  per case; :func:`template_case` chains the three.

The training chain's own synthesis (train option ``synthesis``) randomises these images further; the
cases are written as a folder datastore by ``python -m lib.synthesize``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

DISPLACEMENT_GRID = 5  # control points per axis of the smooth displacement


@dataclass(frozen=True)
class Deformation:
    """What :func:`deform` draws per case: ``scale`` (per axis, times a common factor ``size``),
    ``rotation`` (degrees about each axis), ``displacement`` (std in mm of the smooth field) and
    ``keep`` (the share of the body axis kept by the random crop), each uniform in its range."""

    size: tuple[float, float] = (0.85, 1.15)
    scale: tuple[float, float] = (0.93, 1.07)
    rotation: tuple[float, float] = (-8.0, 8.0)
    displacement: tuple[float, float] = (0.0, 6.0)
    keep: tuple[float, float] = (0.6, 1.0)


def rename_template(
    template: np.ndarray, names: dict[str, int], labels: dict[str, int]
) -> tuple[np.ndarray, int]:
    """Tissue map of ``template`` for a model with ``labels`` ({name: value}, background 0): each named
    template value (``names``: {name: template value}) that is a model label gets its model value, every
    other non-zero template value gets a value after the model's (an extra tissue), 0 stays 0. Returns the
    map and the number of model values (the largest model value + 1): tissues at or above it are background
    to the model.

    >>> rename_template(np.array([0, 6, 2, 7]), {"liver": 6, "kidney": 2, "stomach": 7}, {"liver": 1})
    (array([0, 1, 2, 3]), 2)
    """
    known = {names[n]: v for n, v in labels.items() if n in names and v > 0}
    if not known:
        raise ValueError(
            f"the template names none of the model's labels {sorted(labels)}: got {sorted(names)}"
        )
    n_model = max(labels.values()) + 1
    out = np.zeros(template.shape, np.int64)
    extra = n_model
    for value in np.unique(template):
        if value == 0:
            continue
        if int(value) in known:
            out[template == value] = known[int(value)]
        else:
            out[template == value] = extra
            extra += 1
    return out, n_model


def _rotation(degrees: np.ndarray) -> np.ndarray:
    rx, ry, rz = np.radians(degrees)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return z @ y @ x


def deform(
    tissues: np.ndarray,
    affine: np.ndarray,
    spacing: tuple[float, float, float],
    rng: np.random.Generator,
    ranges: Deformation = Deformation(),
    margin_mm: float = 80.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``tissues`` (a 3-D map of small integers on the grid ``affine``, axes as an axial scan's: the last
    one along the body) deformed at random and resampled onto a grid of ``spacing`` mm with the same axis
    directions that covers the deformed structures plus ``margin_mm`` in-plane (room for a body), its last
    axis cropped to a random share. Returns (tissue map, its affine)."""
    src_spacing = np.linalg.norm(affine[:3, :3], axis=0)
    directions = affine[:3, :3] / src_spacing
    idx = np.argwhere(tissues > 0)
    centre = affine[:3, :3] @ idx.mean(axis=0) + affine[:3, 3]
    matrix = _rotation(rng.uniform(*ranges.rotation, 3)) * (
        rng.uniform(*ranges.size) * rng.uniform(*ranges.scale, 3)
    )
    corners = np.array(
        [
            [i, j, k]
            for i in (idx.min(0)[0], idx.max(0)[0])
            for j in (idx.min(0)[1], idx.max(0)[1])
            for k in (idx.min(0)[2], idx.max(0)[2])
        ],
        dtype=float,
    )
    world = (corners @ affine[:3, :3].T + affine[:3, 3] - centre) @ matrix.T + centre
    local = world @ directions  # in the template's axis frame (directions are orthonormal)
    spacing_arr = np.asarray(spacing, dtype=float)
    lo, hi = local.min(0), local.max(0)
    lo[:2] -= margin_mm
    hi[:2] += margin_mm
    shape = np.ceil((hi - lo) / spacing_arr).astype(int) + 1
    keep = rng.uniform(*ranges.keep)
    n_z = max(int(round(shape[2] * keep)), 8)
    z0 = int(rng.integers(0, shape[2] - n_z + 1))
    lo[2] += z0 * spacing_arr[2]
    shape[2] = n_z
    out_affine = np.eye(4)
    out_affine[:3, :3] = directions * spacing_arr
    out_affine[:3, 3] = directions @ lo
    # output voxel -> world -> undeformed world (inverse affine, plus a smooth displacement) -> template voxel
    grids = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    points = np.stack(grids, -1).reshape(-1, 3) @ out_affine[:3, :3].T.astype(np.float32) + out_affine[:3, 3]
    points = (points - centre) @ np.linalg.inv(matrix).T.astype(np.float32) + centre
    std = rng.uniform(*ranges.displacement)
    field = rng.normal(0.0, std, (3, *(DISPLACEMENT_GRID,) * 3)).astype(np.float32)
    dense = F.interpolate(
        torch.from_numpy(field)[None], size=tuple(int(n) for n in shape), mode="trilinear", align_corners=True
    )[0].numpy()
    points += dense.reshape(3, -1).T
    vox = (points - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T.astype(np.float32)
    norm = 2.0 * vox / (np.array(tissues.shape, dtype=np.float32) - 1.0) - 1.0
    grid = torch.from_numpy(norm[:, ::-1].astype(np.float32)).reshape(
        1, *(int(n) for n in shape), 3
    )  # (x=k, y=j, z=i)
    onehot = F.one_hot(torch.from_numpy(tissues.astype(np.int64)), int(tissues.max()) + 1)
    onehot = onehot.permute(3, 0, 1, 2)[None].float()
    sampled = F.grid_sample(onehot, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return sampled[0].argmax(0).numpy().astype(np.int64), out_affine


@dataclass(frozen=True)
class CTTissues:
    """HU ranges :func:`render_ct` draws each case's tissue means from (uniform), and its noise levels."""

    structure: tuple[float, float] = (-10.0, 260.0)  # every template structure, organs or not
    fat: tuple[float, float] = (-120.0, -80.0)
    muscle: tuple[float, float] = (35.0, 65.0)
    bone: tuple[float, float] = (200.0, 700.0)
    clutter: tuple[float, float] = (-150.0, 120.0)  # bowel and mesentery in the cavity
    texture: tuple[float, float] = (2.0, 15.0)  # std of each tissue's smooth texture
    noise: tuple[float, float] = (5.0, 20.0)


def _body(
    tissues: np.ndarray, affine: np.ndarray, rng: np.random.Generator, reach_mm: float = 40.0
) -> tuple[np.ndarray, ...]:
    """Masks on the grid of ``tissues``: an elliptical cavity per slice (around the structures within
    ``reach_mm`` along the body axis, so the body does not pinch where few structures are), the muscle and
    subcutaneous-fat shells outside it, and the spine (a rod at the cavity's posterior edge). ValueError
    when no slice holds a structure."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    nx, ny, nz = tissues.shape
    x = (np.arange(nx) * spacing[0])[:, None]
    y = (np.arange(ny) * spacing[1])[None, :]
    anterior_up = affine[1, 1] > 0  # the second axis runs towards the patient's front (RAS y)
    pad = rng.uniform(8.0, 25.0)
    muscle, fat = rng.uniform(8.0, 16.0), rng.uniform(8.0, 35.0)
    occupied = [z for z in range(nz) if tissues[:, :, z].any()]
    if not occupied:
        raise ValueError("no structure left in the tissue map")
    extent = np.array([np.r_[a.min(0), a.max(0)] for a in (np.argwhere(tissues[:, :, z]) for z in occupied)])
    # slices without structures (between the pelvis and the abdomen, beyond the ends) take the extent
    # interpolated from their neighbours, so the body is continuous
    extent = np.stack([np.interp(np.arange(nz), occupied, extent[:, c]) for c in range(4)], 1)
    lo, hi = extent[:, :2] * spacing[:2], extent[:, 2:] * spacing[:2]
    reach = max(int(round(reach_mm / spacing[2])), 1)
    cavity, wall, skin, spine = (np.zeros(tissues.shape, bool) for _ in range(4))
    for z in range(nz):
        window = slice(max(z - reach, 0), z + reach + 1)
        near_lo, near_hi = lo[window].min(0), hi[window].max(0)
        (cx, cy), (ax, ay) = (near_lo + near_hi) / 2, (near_hi - near_lo) / 2 + pad
        cavity[:, :, z] = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0
        wall[:, :, z] = ((x - cx) / (ax + muscle)) ** 2 + ((y - cy) / (ay + muscle)) ** 2 <= 1.0
        skin[:, :, z] = ((x - cx) / (ax + muscle + fat)) ** 2 + ((y - cy) / (ay + muscle + fat)) ** 2 <= 1.0
        back = cy - ay + 22.0 if anterior_up else cy + ay - 22.0
        spine[:, :, z] = (x - cx) ** 2 + (y - back) ** 2 <= 18.0**2
    return cavity, wall & ~cavity, skin & ~wall, spine & cavity


def _smooth_noise(shape: tuple[int, ...], sigma_vox: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return field / max(float(field.std()), 1e-6)


def render_ct(
    tissues: np.ndarray, affine: np.ndarray, rng: np.random.Generator, ranges: CTTissues = CTTissues()
) -> np.ndarray:
    """An int16 CT-like image (HU) of a tissue map (0: not a structure): a body around the structures
    (:func:`_body`), clutter of four classes in the rest of the cavity, one HU per tissue and case with a
    smooth texture, partial-volume blur and noise; air (-1000) outside the body."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    cavity, wall, subq, spine = _body(tissues, affine, rng)
    clutter = _smooth_noise(tissues.shape, 10.0 / spacing, rng)
    clutter_class = np.digitize(clutter, np.quantile(clutter, [0.25, 0.5, 0.75]))
    texture = _smooth_noise(tissues.shape, 3.0 / spacing, rng)
    hu = np.full(tissues.shape, -1000.0, np.float32)
    hu[subq] = rng.uniform(*ranges.fat)
    hu[wall] = rng.uniform(*ranges.muscle)
    clutter_hu = rng.uniform(*ranges.clutter, 4)
    clutter_hu[rng.integers(4)] = rng.uniform(*ranges.fat)  # mesenteric fat is always there
    hu[cavity] = clutter_hu[clutter_class[cavity]]
    hu[spine] = rng.uniform(*ranges.bone)
    n = int(tissues.max()) + 1
    means = rng.uniform(*ranges.structure, n)
    textures = rng.uniform(*ranges.texture, n)
    inside = tissues > 0
    hu[inside] = (means[tissues] + textures[tissues] * texture)[inside]
    hu = ndimage.gaussian_filter(hu, rng.uniform(0.4, 1.0) * np.array([1.0, 1.0, 0.5]))
    body = cavity | wall | subq
    hu += np.where(body, rng.uniform(*ranges.noise) * rng.standard_normal(hu.shape).astype(np.float32), 0.0)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def template_case(
    template: np.ndarray,
    affine: np.ndarray,
    names: dict[str, int],
    labels: dict[str, int],
    spacing: tuple[float, float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training case from a template: (int16 CT image, uint8 label with the model's values, affine)."""
    tissues, n_model = rename_template(template, names, labels)
    deformed, out_affine = deform(tissues, affine, spacing, rng)
    image = render_ct(deformed, out_affine, rng)
    label = np.where(deformed < n_model, deformed, 0).astype(np.uint8)
    return image, label, out_affine
