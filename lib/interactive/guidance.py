"""Clicks: from a request's params to voxel indices on the working grid, and from there to the guidance
channels a click-driven (DeepEdit-style) network reads next to the image.

* :func:`parse_clicks`: the 3D Slicer plugin's payloads (one key per label name, or deepgrow's ``label`` +
  ``foreground`` + ``background``) to :class:`Clicks`; anything malformed raises ``ValueError`` with the
  reason (the caller answers HTTP 400);
* :func:`to_working_grid`: voxel indices of the input image (as the viewer sees its file) to voxel
  indices of the working grid (after RAS orientation and resampling), through world coordinates;
* :func:`guidance_channels`: one channel per class, a Gaussian blob per click (:func:`draw_blob`).

Channel ``c`` holds the clicks of class ``c``: channel 0 the background clicks, channel ``v`` the clicks
of the label of value ``v`` (N + 1 channels for N labels, so the network input is the image plus N + 1
channels). A background click says "this voxel is background", whichever label was being edited; it
gets its own channel rather than being dropped or folded into a label's, so the network can learn that it
removes foreground there instead of adding to it. Without clicks every channel is zero: the auto mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

Point = tuple[int, ...]
BACKGROUND = "background"  # the name of background clicks, as a params key or as the edited label
SIGMA = 3.0  # default blob width in working-grid voxels
TRUNCATE = 4.0  # a blob is drawn out to this many sigmas (exp(-8) = 3e-4 beyond)


@dataclass(frozen=True)
class Clicks:
    """Clicks on one voxel grid: ``foreground`` {label name: points of that label}, ``background``
    points, and ``label``, the label being edited (None when the request names none)."""

    foreground: dict[str, list[Point]] = field(default_factory=dict)
    background: list[Point] = field(default_factory=list)
    label: str | None = None

    def mapped(self, func: Callable[[list[Point]], list[Point]]) -> Clicks:
        """The same clicks with every point list passed through ``func`` (e.g. :func:`to_working_grid`)."""
        return Clicks({n: func(p) for n, p in self.foreground.items()}, func(self.background), self.label)


def parse_clicks(
    params: Mapping[str, object], labels: Mapping[str, int], spatial_dims: int | None = None
) -> Clicks:
    """The clicks of a request's ``params`` for a model with ``labels`` ({name: value}).

    Two payload forms, also mixed: one key per label name with a list of ``[i, j, k]`` (3D Slicer's
    deepedit form; the key ``background`` holds background clicks), and deepgrow's ``foreground`` and
    ``background`` lists for the label named by ``label``. ``label`` ``background`` makes ``foreground``
    background clicks. Points are voxel indices (integer-valued, >= 0), all of ``spatial_dims`` (else all
    of one length, 2 or 3). Other params are request options and are ignored, except a list of points
    under a name that is no label, which raises ``ValueError``, as do malformed points, an unknown
    ``label``, ``foreground`` without ``label`` and a point clicked for two different classes.
    Duplicates within one class are dropped. Every label of the model gets an entry.

    >>> labels = {"liver": 1, "spleen": 2}
    >>> parse_clicks({"liver": [[10, 20, 5]], "spleen": [], "background": [[0, 0, 0]]}, labels)
    Clicks(foreground={'liver': [(10, 20, 5)], 'spleen': []}, background=[(0, 0, 0)], label=None)
    >>> parse_clicks({"label": "spleen", "foreground": [[1, 2, 3.0]], "background": []}, labels).foreground
    {'liver': [], 'spleen': [(1, 2, 3)]}
    """
    label = params.get("label")
    if label in (None, ""):
        label = None
    elif not isinstance(label, str) or (label != BACKGROUND and label not in labels):
        raise ValueError(f"unknown label {label!r}; valid: {', '.join([*labels, BACKGROUND])}")
    found: dict[str, list[Point]] = {name: [] for name in sorted(labels, key=labels.__getitem__)}
    found[BACKGROUND] = []
    for key, value in params.items():
        if key in labels or key == BACKGROUND:
            found[key] += _points(value, key)
        elif key == "foreground":
            points = _points(value, key)
            if points and label is None:
                raise ValueError("'foreground' clicks need 'label', the label they are for")
            if points:
                found[label] += points
        elif _looks_like_points(value):
            raise ValueError(f"clicks for unknown label {key!r}; valid: {', '.join([*labels, BACKGROUND])}")
    lengths = {len(p) for points in found.values() for p in points}
    if len(lengths) > 1 or (spatial_dims is not None and lengths - {spatial_dims}):
        want = f"{spatial_dims}" if spatial_dims is not None else "one number of"
        raise ValueError(f"every click needs {want} voxel indices, got points of {sorted(lengths)} indices")
    owner: dict[Point, str] = {}
    for name, points in found.items():
        found[name] = list(dict.fromkeys(points))
        for p in found[name]:
            if owner.setdefault(p, name) != name:
                raise ValueError(f"point {list(p)} is clicked both as {owner[p]!r} and as {name!r}")
    background = found.pop(BACKGROUND)
    return Clicks(found, background, None if label == BACKGROUND else label)


def _looks_like_points(value: object) -> bool:
    """A non-empty list whose items are all lists or tuples: what a list of clicks is made of."""
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, list | tuple) for v in value)


def _points(value: object, key: str) -> list[Point]:
    """``value`` as a list of points; ``ValueError`` naming ``key`` and the offending item."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key!r}: expected a list of points [[i, j, k], ...], got {value!r}")
    return [_point(p, key) for p in value]


def _point(value: object, key: str) -> Point:
    """One point: 2 or 3 integer-valued, non-negative numbers (``12`` or ``12.0``; not ``12.5``, ``True``)."""
    ok = isinstance(value, list | tuple | np.ndarray) and len(value) in (2, 3)
    ok = ok and all(isinstance(c, Real) and not isinstance(c, bool | np.bool_) for c in value)
    if not ok or not all(float(c).is_integer() and c >= 0 for c in value):
        raise ValueError(f"{key!r}: a point is 2 or 3 voxel indices (integers >= 0), got {value!r}")
    return tuple(int(c) for c in value)


def to_working_grid(
    points: Sequence[Sequence[int]],
    input_affine: np.ndarray,
    working_affine: np.ndarray,
    working_shape: Sequence[int],
) -> list[Point]:
    """Voxel indices of the input image to voxel indices of the working grid.

    ``input_affine`` / ``working_affine``: the voxel->world matrices of the two grids, 4x4 (or 3x3 for
    2-D); a point's world position is ``input_affine @ [i, j, k, 1]``, its working index
    ``inv(working_affine) @ world`` rounded to the nearest voxel (halves up). A 2-D point on 4x4 affines
    is the slice k = 0. A point outside the working grid (more than half a voxel beyond its outer voxel
    centres) raises ``ValueError`` naming it.

    A flipped, anisotropic input (world x = 10 - 2 i, z = 3 k) onto a RAS grid of spacing (1, 1, 1.5)
    starting at x = -20:

    >>> flip = np.diag([-2.0, 1.0, 3.0, 1.0]); flip[0, 3] = 10.0
    >>> work = np.diag([1.0, 1.0, 1.5, 1.0]); work[0, 3] = -20.0
    >>> to_working_grid([(5, 4, 2), (0, 0, 0)], flip, work, (40, 8, 8))
    [(20, 4, 4), (30, 0, 0)]
    """
    a_in, a_work = np.asarray(input_affine, np.float64), np.asarray(working_affine, np.float64)
    dims = len(working_shape)
    square = a_in.ndim == 2 and a_in.shape[0] == a_in.shape[1]
    if a_in.shape != a_work.shape or not square or a_in.shape[0] <= dims:
        raise ValueError(f"affines must be matching square matrices for a {dims}-D grid, got {a_in.shape}")
    rank = a_in.shape[0] - 1
    to_work = np.linalg.solve(a_work, a_in)
    shape = np.array([*working_shape, *[1] * (rank - dims)])
    out = []
    for p in points:
        if len(p) != dims:
            raise ValueError(f"point {list(p)} has {len(p)} indices; the working grid is {dims}-D")
        x = (to_work @ np.array([*p, *[0] * (rank - dims), 1.0]))[:rank]
        if (x < -0.5 - 1e-6).any() or (x > shape - 0.5 + 1e-6).any():
            raise ValueError(f"point {list(p)} falls outside the working grid (at {np.round(x, 2).tolist()})")
        index = np.clip(np.floor(x + 0.5), 0, shape - 1).astype(int)
        out.append(tuple(int(i) for i in index[:dims]))
    return out


def draw_blob(channel: np.ndarray, point: Sequence[int], sigma: float | Sequence[float] = SIGMA) -> None:
    """Draw ``exp(-d^2 / 2 sigma^2)`` around ``point`` into ``channel`` (in place, maximum with what is
    there); ``sigma`` in voxels, one value or one per axis; drawn out to ``TRUNCATE`` sigmas.

    >>> c = np.zeros(5); draw_blob(c, (1,), 1.0); c.round(3).tolist()
    [0.607, 1.0, 0.607, 0.135, 0.011]
    """
    sigmas = np.broadcast_to(np.asarray(sigma, np.float64), (channel.ndim,))
    if len(point) != channel.ndim or not all(0 <= p < n for p, n in zip(point, channel.shape, strict=True)):
        raise ValueError(f"click {list(point)} is outside the grid of shape {list(channel.shape)}")
    if not (sigmas > 0).all():
        raise ValueError(f"sigma must be > 0, got {sigma}")
    box, blob = [], np.ones((), np.float64)
    for p, s, n in zip(point, sigmas, channel.shape, strict=True):
        r = int(np.ceil(TRUNCATE * s))
        lo, hi = max(0, p - r), min(n, p + r + 1)
        blob = np.multiply.outer(blob, np.exp(-0.5 * ((np.arange(lo, hi) - p) / s) ** 2))
        box.append(slice(lo, hi))
    region = channel[tuple(box)]
    np.maximum(region, blob, out=region)


def guidance_channels(
    clicks: Clicks, labels: Mapping[str, int], shape: Sequence[int], sigma: float | Sequence[float] = SIGMA
) -> np.ndarray:
    """The guidance of ``clicks`` on a grid of ``shape``: float32 (N + 1, *shape), channel 0 the
    background clicks, channel ``labels[name]`` the clicks of ``name`` (see the module doc); a blob of
    peak 1 and width ``sigma`` voxels per click, the maximum where blobs overlap; all zero without clicks.

    >>> g = guidance_channels(Clicks({"liver": [(2, 2)]}, [(0, 4)]), {"liver": 1}, (5, 5), sigma=1.0)
    >>> g.shape, float(g[1, 2, 2]), round(float(g[1, 2, 3]), 4), float(g[0, 0, 4])
    ((2, 5, 5), 1.0, 0.6065, 1.0)
    """
    if sorted(labels.values()) != list(range(1, len(labels) + 1)):
        raise ValueError(f"label values must be 1..N, got {dict(labels)}")
    out = np.zeros((len(labels) + 1, *shape), np.float32)
    for p in clicks.background:
        draw_blob(out[0], p, sigma)
    for name, points in clicks.foreground.items():
        if name not in labels:
            raise ValueError(f"clicks for unknown label {name!r}; valid: {', '.join(labels)}")
        for p in points:
            draw_blob(out[labels[name]], p, sigma)
    return out
