"""Deterministic synthetic PA chest radiographs with lung-field masks for the sample datastore.

Run ``python sample-data/generate_xray.py`` from the repository root to regenerate, bit for bit,
``sample-data/xray/cxr_NNN.png`` (grayscale, 8-bit or 16-bit holding 12 or 16 significant bits) and
``sample-data/xray/labels/final/cxr_NNN.png`` (uint8: 0 background, 1 lung_left, 2 lung_right).
``generate_case`` is importable (with ``sample-data`` on ``sys.path``) for tests that need variants.

The anatomy lives in a patient frame (mm; u towards the patient's left, which is image right in a PA
view; v downwards, 0 at the lung apices) that is scaled, shifted and slightly rotated onto the
detector. Each structure adds its projected path length times an attenuation coefficient to the line
integral: body soft tissue (neck, shoulders, arms, chest wall, abdomen), lung air (with branching
vessels and parenchymal texture), heart and mediastinum (where no lung is), trachea and main bronchi,
gastric bubble, spine, posterior and anterior ribs (curved bands with cortical margins), clavicles,
scapulae and humeri. The image is the log of the transmitted intensity after scatter, quantum noise
and detector blur, edge-enhanced and windowed with a per-case exposure, contrast and gamma.

Mask convention (JSRT / Montgomery): the visible lung fields, i.e. the lungs above the diaphragm
domes excluding the heart shadow and the mediastinum (aortic knob included); ribs and clavicles over
the lungs are inside the fields.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from phantom_utils import png_bytes, smooth_noise
from scipy import ndimage

LABELS = {"background": 0, "lung_left": 1, "lung_right": 2}
MU_SOFT = 0.02  # 1/mm, soft tissue; lung parenchyma keeps 20 % of it
MU_BONE = 0.05  # 1/mm, cortical bone in excess of the soft tissue it replaces
MU_MARROW = 0.012  # 1/mm, cancellous bone in excess of soft tissue


@dataclass(frozen=True)
class CaseSpec:
    """One committed case: anatomy seed, image (rows, columns) and significant bits (8, 12 or 16)."""

    name: str
    seed: int
    shape: tuple[int, int]
    bits: int
    labelled: bool = True  # False: the image is shipped without its lung mask


CASES: tuple[CaseSpec, ...] = tuple(
    CaseSpec(f"cxr_{i:03d}", 200 + i, shape, bits)
    for i, (shape, bits) in enumerate(
        [
            ((320, 320), 8),
            ((256, 256), 8),
            ((384, 384), 8),
            ((352, 320), 12),
            ((288, 288), 8),
            ((384, 352), 8),
            ((256, 288), 16),
            ((320, 320), 8),
            ((352, 352), 8),
            ((288, 256), 12),
            ((384, 384), 8),
            ((320, 288), 8),
            ((256, 256), 8),
            ((352, 352), 16),
            ((384, 320), 8),
            ((288, 320), 8),
        ]
    )
)

# Shipped without masks, so Next Sample has images to offer on first start; not part of any split.
UNLABELLED: tuple[CaseSpec, ...] = (
    CaseSpec("new_000", 216, (320, 320), 8, labelled=False),
    CaseSpec("new_001", 217, (352, 320), 12, labelled=False),
)


class XrayCase(NamedTuple):
    """A generated radiograph: image (uint8, or uint16 for more than 8 bits), mask and pixel spacing."""

    image: np.ndarray
    mask: np.ndarray  # uint8, LABELS
    spacing: float  # mm per pixel (square pixels)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _chord(d: np.ndarray, r: float | np.ndarray) -> np.ndarray:
    """Path length through a circle (cylinder) of radius ``r`` at distance ``d`` from its centre."""
    return 2.0 * np.sqrt(np.maximum(r * r - d * d, 0.0))


def _bone(d: np.ndarray, r: float, cortex: float = 1.2) -> np.ndarray:
    """Line integral through a tubular bone: marrow core plus a brighter cortical shell."""
    return MU_MARROW * _chord(d, r) + (MU_BONE - MU_MARROW) * (_chord(d, r) - _chord(d, r - cortex))


class _Graph:
    """A tube whose centreline is the graph v = f(w), w in [w0, w1] (ribs, clavicles)."""

    def __init__(self, w0: float, w1: float, f: Callable[[np.ndarray], np.ndarray], radius: float) -> None:
        self.w0, self.w1, self.f, self.r = w0, w1, f, radius

    def distance(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Approximate distance to the centreline (slope-corrected vertical offset, round ends)."""
        wc = np.clip(w, self.w0, self.w1)
        a, b = np.maximum(wc - 0.5, self.w0), np.minimum(wc + 0.5, self.w1)
        slope = (self.f(b) - self.f(a)) / (b - a)
        d = np.abs(v - self.f(wc)) / np.sqrt(1.0 + slope**2)
        return np.sqrt(d**2 + (w - wc) ** 2)


def _posterior_rib(w: np.ndarray, v_medial: float, rise: float, w_end: float) -> np.ndarray:
    """Posterior rib centreline: up from the spine, then curving down to the lateral chest wall."""
    return v_medial + rise * ((w / w_end - 0.4) ** 2 - 0.16)


def _anterior_rib(w: np.ndarray, v_lateral: float, drop: float, w_medial: float, w_end: float) -> np.ndarray:
    """Anterior rib centreline: from the lateral chest wall down towards the costal cartilage."""
    return v_lateral + drop * ((w_end - w) / (w_end - w_medial)) ** 1.2


class _Chest:
    """One synthetic patient drawn from ``rng`` (patient frame, mm)."""

    def __init__(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        sc = self.sc = uniform(0.88, 1.1)
        self.W = 132.0 * sc * uniform(0.95, 1.05)  # lung half-width at the costophrenic angles
        self.H = 240.0 * sc * uniform(0.92, 1.06)  # apex to right costophrenic angle
        self.wall = uniform(14.0, 28.0) * sc  # chest wall soft tissue
        self.m0 = uniform(18.0, 25.0) * sc  # upper mediastinal half-width
        self.apex = np.array([0.42, 0.43]) * self.W * uniform(0.95, 1.05, 2)
        dome_r = 0.8 * self.H * uniform(0.95, 1.02)
        self.dome = {-1.0: dome_r, 1.0: dome_r + uniform(8.0, 25.0)}  # patient's right dome higher
        self.base = {s: self.H + 0.7 * (self.dome[s] - dome_r) for s in (-1.0, 1.0)}
        self.heart_c = np.array([uniform(26.0, 36.0) * sc, dome_r - uniform(15.0, 30.0) * sc])
        self.heart_semi = np.array([uniform(62.0, 74.0), uniform(44.0, 52.0)]) * sc
        self.heart_angle = np.radians(uniform(25.0, 40.0))
        self.heart_depth = uniform(60.0, 70.0) * sc
        r = uniform(13.0, 18.0) * sc
        self.knob = (np.array([self.m0 + 0.3 * r, 0.24 * self.H]), r)
        self.trachea = (-uniform(0.0, 5.0), uniform(8.0, 11.0) * sc, 0.3 * self.H * uniform(0.9, 1.1))
        self.neck, self.depth = uniform(50.0, 62.0) * sc, uniform(95.0, 115.0) * sc
        self.arm_r = uniform(32.0, 42.0) * sc
        self.arm_u = self.W + self.wall + 0.6 * self.arm_r  # arms hang beside the chest wall
        self.ribs = self._ribs(rng)
        self.clavicles = [
            self._clavicle(uniform(10.0, 25.0) * sc, uniform(22.0, 36.0) * sc, uniform(6.0, 7.5) * sc)
            for _ in range(2)
        ]
        self.vertebra = uniform(22.0, 27.0) * sc  # height incl. disc
        self.scoliosis = (uniform(-5.0, 5.0), uniform(0, 2 * np.pi))
        self.vessels = {
            s: self._tree(rng, np.array([s * (self.m0 + 16.0 * sc), 0.42 * self.H]), s) for s in (-1, 1)
        }

    # -- anatomy helpers --------------------------------------------------------------------------

    def _ribs(self, rng: np.random.Generator) -> list[tuple[_Graph, float]]:
        """Posterior ribs (horizontal, curving down laterally) and fainter anterior ribs (down medially)."""
        uniform, sc = rng.uniform, self.sc
        out = []
        dv = self.H * uniform(0.085, 0.095)
        w_end = self.W + 0.5 * self.wall
        v0 = -uniform(4.0, 12.0) * sc
        for k in range(11):
            vk = v0 + k * dv + uniform(-2.0, 2.0)
            h = (110.0 + 5.0 * k) * sc * uniform(0.9, 1.1)
            r = (3.8 + 0.2 * k) * sc
            post = partial(_posterior_rib, v_medial=vk, rise=h, w_end=w_end)
            out.append((_Graph(12.0 * sc, w_end, post, r), 1.0))
            v_lat, drop, w_med = float(post(w_end)), uniform(40.0, 60.0) * sc, uniform(0.3, 0.4) * self.W
            ant = partial(_anterior_rib, v_lateral=v_lat, drop=drop, w_medial=w_med, w_end=w_end)
            out.append((_Graph(w_med, w_end, ant, 0.8 * r), 0.5))
        return out

    def _clavicle(self, v_medial: float, rise: float, radius: float) -> _Graph:
        """S-shaped clavicle from the sternal end (over the apex) up to the acromion."""
        w1 = self.arm_u

        def f(w: np.ndarray) -> np.ndarray:
            return v_medial - rise * (w / w1) + 6.0 * self.sc * np.sin(2 * np.pi * w / w1)

        return _Graph(15.0 * self.sc, w1, f, radius)

    def _tree(self, rng: np.random.Generator, root: np.ndarray, side: float) -> np.ndarray:
        """Branching pulmonary vessels from the hilum: rows (u0, v0, u1, v1, radius)."""
        segs = []
        trunks = (-70.0, -35.0, 0.0, 35.0, 70.0)
        stack = [
            (root, np.radians(a + rng.uniform(-10.0, 10.0)), 30.0 * self.sc, 6.5 * self.sc) for a in trunks
        ]
        while stack:
            p, angle, length, r = stack.pop()
            direction = np.array([side * np.cos(angle), np.sin(angle)])
            q = p + length * direction
            segs.append([p[0], p[1], q[0], q[1], r])
            if r > 0.8:
                for sign in (-1.0, 1.0):
                    stack.append(
                        (
                            q,
                            angle + sign * np.radians(rng.uniform(10.0, 30.0)),
                            length * rng.uniform(0.7, 0.9),
                            r * 0.7,
                        )
                    )
        return np.array(segs)

    def lung(self, u: np.ndarray, v: np.ndarray, s: float) -> np.ndarray:
        """Depth (mm, > 0 inside) into the lung of side ``s`` (+1 patient's left), heart not removed."""
        w = s * u
        wa = self.apex[int(s > 0)]
        t = np.clip(v / (0.6 * self.H), 0.0, 1.0)
        lateral = wa + (self.W - wa) * np.sqrt(1.0 - (1.0 - t) ** 2)
        tm = np.clip(v / (0.22 * self.H), 0.0, 1.0)
        medial = np.maximum(self.m0, wa - (wa - self.m0) * np.sqrt(1.0 - (1.0 - tm) ** 2))
        peak = 0.5 * self.W
        slope = np.where(w > peak, 1.0, 0.35)  # steep to the costophrenic angle, flatter medially
        dome = self.dome[s] + slope * (self.base[s] - self.dome[s]) * ((w - peak) / (self.W - peak)) ** 2
        depth = np.minimum.reduce([w - medial, lateral - w, dome - v, v])
        if s > 0:
            c, r = self.knob
            depth = np.minimum(depth, np.hypot(w - c[0], v - c[1]) - r)
        return depth

    def heart(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """AP path length (mm) through the heart."""
        ca, sa = np.cos(self.heart_angle), np.sin(self.heart_angle)
        du, dv = u - self.heart_c[0], v - self.heart_c[1]
        a, b = (ca * du + sa * dv) / self.heart_semi[0], (-sa * du + ca * dv) / self.heart_semi[1]
        return self.heart_depth * _chord(np.sqrt(a * a + b * b), 1.0)

    def body(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """AP soft-tissue path (mm): neck, trapezius slope to the shoulders, chest wall, abdomen, arms."""
        chest = self.W + self.wall
        a = self.neck + (chest - self.neck) * _smoothstep((v + 70.0 * self.sc) / (55.0 * self.sc))
        a = a - 8.0 * np.clip((v - self.H) / 100.0, 0.0, None)
        b = 0.55 * self.depth + 0.45 * self.depth * _smoothstep((v + 70.0 * self.sc) / (70.0 * self.sc))
        path = 2.0 * b * np.sqrt(np.clip(1.0 - (u / a) ** 2, 0.0, 1.0))
        for s in (-1.0, 1.0):
            top = np.hypot(u - s * self.arm_u, np.minimum(v + 25.0 * self.sc, 0.0))  # rounded shoulder cap
            path = np.maximum(path, 0.9 * _chord(top, self.arm_r))
        return path

    def bones(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Line integral of bone in excess of soft tissue."""
        sc = self.sc
        out = np.zeros_like(u)
        for s in (-1.0, 1.0):
            w = s * u
            for rib, weight in self.ribs:
                out += weight * _bone(rib.distance(w, v), rib.r)
            clav = self.clavicles[int(s > 0)]
            out += _bone(clav.distance(w, v), clav.r, 1.8)
            gx, gy = self.arm_u - 0.2 * self.arm_r, -5.0 * sc  # humeral head centre
            head = np.hypot(w - gx, v - gy)
            shaft = np.hypot(w - gx - 3.0 * sc, np.minimum(v - gy, 0.0))
            out += _bone(np.minimum(head, shaft + 10.0 * sc), 22.0 * sc, 1.5)  # humeral head and shaft
            # scapula: thin plate between the glenoid, the medial border and the inferior angle
            inside = np.minimum.reduce(
                [w - (0.6 * self.W + 0.15 * v), gx - w, 0.55 * self.H - v, v - gy + 15.0]
            )
            out += MU_BONE * 4.0 * _smoothstep(inside / 4.0)
        # spine: vertebral bodies (cancellous, cortical end plates) and pedicles
        cu = self.scoliosis[0] * np.sin(v / 160.0 + self.scoliosis[1])
        half = (19.0 + 0.03 * np.clip(v, 0.0, None)) * sc
        phase = np.mod(v / self.vertebra, 1.0)
        body = _smoothstep((half - np.abs(u - cu)) / 2.0) * _smoothstep(
            np.minimum(phase, 0.82 - phase) / 0.05
        )
        out += body * (
            14.0 * MU_MARROW + 1.5 * MU_BONE * np.exp(-((np.minimum(phase, 0.82 - phase) / 0.04) ** 2))
        )
        for s in (-1.0, 1.0):
            d = np.hypot((u - cu - s * (half - 4.0 * sc)) / 4.5, (phase - 0.35) * self.vertebra / 6.0)
            out += _bone(d * 5.0 * sc, 5.0 * sc, 1.5)
        return out

    def air(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """AP path (mm) through the trachea, main bronchi and gastric bubble."""
        cu, r, carina = self.trachea
        trachea = np.where(v < carina, _chord(u - cu, r), 0.0)
        for s in (-1.0, 1.0):
            bronchus = _Graph(
                0.0, 48.0 * self.sc, lambda w, s=s: carina + (0.7 if s > 0 else 0.45) * w, 0.7 * r
            )
            trachea = np.maximum(trachea, _chord(bronchus.distance(s * (u - cu), v), 0.7 * r))
        gw, gv = 0.5 * self.W, self.dome[1.0] + 20.0 * self.sc
        q = np.hypot((u - gw) / 30.0, (v - gv) / 15.0)
        return trachea + np.where(v < gv + 5.0, _chord(q, 1.0) * 14.0 * self.sc, 0.0)

    def vessel_map(self, u: np.ndarray, v: np.ndarray, pixel: _Pixels) -> np.ndarray:
        """AP path (mm) through the pulmonary vessels, rasterised segment by segment."""
        out = np.zeros_like(u)
        for segs in self.vessels.values():
            for u0, v0, u1, v1, r in segs:
                rows, cols = pixel.box(np.array([u0, u1]), np.array([v0, v1]), r + 1.0)
                if rows.start >= rows.stop or cols.start >= cols.stop:
                    continue
                pu, pv = u[rows, cols], v[rows, cols]
                du, dv = u1 - u0, v1 - v0
                t = np.clip(((pu - u0) * du + (pv - v0) * dv) / (du * du + dv * dv), 0.0, 1.0)
                d = np.hypot(pu - u0 - t * du, pv - v0 - t * dv)
                out[rows, cols] = np.maximum(out[rows, cols], _chord(d, r))
        return out


class _Pixels:
    """Pixel grid <-> patient frame: p_detector = R(theta) p_patient + offset (mm, centred pixels)."""

    def __init__(self, shape: tuple[int, int], spacing: float, theta: float, offset: np.ndarray) -> None:
        self.shape, self.spacing, self.offset = shape, spacing, offset
        self.rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def patient(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) at every pixel centre."""
        rows, cols = self.shape
        y = (np.arange(rows) - (rows - 1) / 2)[:, None] * self.spacing - self.offset[1]
        x = (np.arange(cols) - (cols - 1) / 2)[None, :] * self.spacing - self.offset[0]
        r = self.rot
        return r[0, 0] * x + r[1, 0] * y, r[0, 1] * x + r[1, 1] * y

    def box(self, u: np.ndarray, v: np.ndarray, pad: float) -> tuple[slice, slice]:
        """Pixel slices covering patient points (u, v) padded by ``pad`` mm."""
        x, y = self.rot @ np.stack([u, v]) + self.offset[:, None]
        rows, cols = self.shape
        c = (x / self.spacing + (cols - 1) / 2, y / self.spacing + (rows - 1) / 2)
        p = pad / self.spacing + 1
        lo = [max(int(np.floor(a.min() - p)), 0) for a in (c[1], c[0])]
        hi = [min(int(np.ceil(a.max() + p)) + 1, n) for a, n in ((c[1], rows), (c[0], cols))]
        return slice(lo[0], hi[0]), slice(lo[1], hi[1])


def generate_case(seed: int, shape: tuple[int, int] = (320, 320), bits: int = 8) -> XrayCase:
    """Synthesise one PA chest radiograph (see the module docstring for anatomy and mask convention).

    ``seed`` fixes the patient, positioning, exposure and display; ``shape`` is (rows, columns);
    ``bits`` the significant bits of the stored values (8: uint8; 12 or 16: uint16).
    """
    if bits not in (8, 12, 16):
        raise ValueError(f"bits must be 8, 12 or 16, got {bits}")
    anat_rng, case_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    chest = _Chest(anat_rng)
    u_ = case_rng.uniform
    spacing = u_(380.0, 440.0) * chest.sc / shape[1]
    top = u_(0.1, 0.2) * shape[0] * spacing  # mm from the image top to the apices
    offset = np.array([u_(-15.0, 15.0), top - (shape[0] - 1) / 2 * spacing])
    pixel = _Pixels(shape, spacing, np.radians(u_(-5.0, 5.0)), offset)
    counts, scatter, sharpen = 10.0 ** u_(3.3, 4.5), u_(0.1, 0.4), u_(0.8, 2.0)
    gamma, lo, hi = u_(0.75, 1.4), u_(-0.05, 0.1), u_(0.95, 1.2)

    u, v = pixel.patient()
    heart = chest.heart(u, v)
    lung = np.zeros_like(u)
    mask = np.zeros(shape, np.uint8)
    for s, label in ((1.0, LABELS["lung_left"]), (-1.0, LABELS["lung_right"])):
        depth = chest.lung(u, v, s)
        lung += 150.0 * chest.sc * np.sqrt(np.clip(depth / 25.0, 0.0, 1.0))
        parts, n = ndimage.label((depth > 0) & (heart == 0))
        if n:  # the field is the largest piece (drops slivers in the cardiophrenic angle)
            mask[parts == 1 + np.argmax(np.bincount(parts.ravel())[1:])] = label
    texture = 1.0 + 0.02 * smooth_noise(noise_rng, shape, 1.5 / spacing)
    lung = np.maximum(lung * texture - heart, 0.1 * lung)
    vessels = np.minimum(chest.vessel_map(u, v, pixel), lung)
    line = MU_SOFT * (chest.body(u, v) - 0.8 * (lung - vessels) - chest.air(u, v)) + chest.bones(u, v)

    intensity = np.exp(-line)
    intensity = intensity + scatter * ndimage.gaussian_filter(intensity, 25.0 / spacing)
    intensity = ndimage.gaussian_filter(intensity, 0.6)  # detector blur
    noisy = np.maximum(intensity + np.sqrt(intensity / counts) * noise_rng.standard_normal(shape), 1e-4)
    log = np.log(1.0 + scatter) - np.log(noisy)
    log += sharpen * (log - ndimage.gaussian_filter(log, 8.0 / spacing))  # vendor edge enhancement
    ref = np.percentile(log, 99.9)
    x = np.clip((log - lo * ref) / (hi * ref - lo * ref), 0.0, 1.0) ** gamma
    top_value = (1 << bits) - 1
    image = np.rint(x * top_value).astype(np.uint8 if bits == 8 else np.uint16)
    return XrayCase(image, mask, float(spacing))


def write_case(spec: CaseSpec, root: Path) -> dict:
    """Generate ``spec`` and write its image and mask (unless unlabelled) under ``root`` (``xray``)."""
    start = time.perf_counter()
    case = generate_case(spec.seed, spec.shape, spec.bits)
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    (root / f"{spec.name}.png").write_bytes(png_bytes(case.image))
    if spec.labelled:
        (root / "labels" / "final" / f"{spec.name}.png").write_bytes(png_bytes(case.mask))
    return {"seconds": time.perf_counter() - start, "spacing": case.spacing}


def main() -> None:
    """Regenerate the committed X-ray sample cases (all, or those named)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "xray")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    for spec in (*CASES, *UNLABELLED):
        if not args.cases or spec.name in args.cases:
            info = write_case(spec, args.out)
            print(
                f"{spec.name}: {spec.shape} {spec.bits} bits {info['spacing']:.2f} mm {info['seconds']:.1f}s"
            )


if __name__ == "__main__":
    main()
