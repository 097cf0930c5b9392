"""CT windowing: clip Hounsfield units to [L - W/2, L + W/2] and scale to [0, 1]."""

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import ScaleIntensityRange
from monai.utils import convert_to_dst_type

from lib.preprocessing.intensity import MaskedMapTransform

#: Window presets, name -> (width, level) in HU.
CT_WINDOWS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        # Liver windows in use span W 150-200 / L 40-60. We take the narrowest width (most contrast between
        # lesions and parenchyma) at L 50, i.e. [-25, 125] HU, which covers unenhanced to portal-venous liver.
        "liver": (150.0, 50.0),
        "abdomen": (400.0, 40.0),  # soft tissue
        "lung": (1500.0, -600.0),
        "bone": (1800.0, 400.0),
        "brain": (80.0, 40.0),
    }
)


def _window_scaler(preset: str | None, width: float | None, level: float | None) -> ScaleIntensityRange:
    """Resolve a window (explicit ``width``/``level`` override the preset's) into a MONAI scaler.

    Raises ValueError for an unknown preset, a missing width/level without preset, or width <= 0.
    """
    if preset is not None:
        if preset not in CT_WINDOWS:
            raise ValueError(f"unknown CT window preset {preset!r}; known: {', '.join(sorted(CT_WINDOWS))}")
        preset_width, preset_level = CT_WINDOWS[preset]
        width = preset_width if width is None else width
        level = preset_level if level is None else level
    if width is None or level is None:
        raise ValueError("give a preset or both width and level")
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}")
    return ScaleIntensityRange(
        a_min=level - width / 2, a_max=level + width / 2, b_min=0.0, b_max=1.0, clip=True
    )


def ct_window(
    img_hu: NdarrayOrTensor,
    preset: str | None = None,
    width: float | None = None,
    level: float | None = None,
) -> NdarrayOrTensor:
    """Window a CT image (any shape, HU) to float32 [0, 1]: L - W/2 -> 0, L -> 0.5, L + W/2 -> 1.

    ``preset`` is a :data:`CT_WINDOWS` name; explicit ``width``/``level`` override its values and are both
    required without a preset. Returns the input's type (MetaTensor meta preserved).
    """
    return _apply(_window_scaler(preset, width, level), img_hu)


def _apply(scaler: ScaleIntensityRange, img: NdarrayOrTensor) -> NdarrayOrTensor:
    """Run the MONAI scaler (which always returns a tensor) and give back the input's type as float32."""
    return convert_to_dst_type(scaler(img), img, dtype=np.float32)[0]


class CTWindowd(MaskedMapTransform):
    """Dictionary :func:`ct_window`; the window is validated at construction."""

    def __init__(
        self,
        keys: KeysCollection,
        preset: str | None = "abdomen",
        width: float | None = None,
        level: float | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
        self.scaler = _window_scaler(preset, width, level)

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        return _apply(self.scaler, img)
