"""Model presets: one definition per model, shared by training and inference.

A preset names the modality's intensity preprocessing, the working voxel spacing, the patch size and
the network; everything that reads or writes data for a model derives its transforms from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from lib.networks.unet import build_unet


@dataclass(frozen=True)
class ModelPreset:
    """A segmentation model definition.

    ``spacing`` is the working voxel size in mm (RAS axis order), ``patch_size`` the training patch
    and inference window in voxels at that spacing. 2-D presets (radiographs carry no reliable pixel
    size) instead resize every image to ``working_size`` pixels. ``intensity`` selects the modality's
    preprocessing (see :func:`lib.preprocessing.chain.intensity_transform`).
    """

    name: str
    modality: str
    description: str
    labels: dict[str, int]
    spatial_dims: int
    spacing: tuple[float, ...]
    patch_size: tuple[int, ...]
    intensity: dict[str, Any]
    network: dict[str, Any] = field(default_factory=dict)
    working_size: tuple[int, ...] | None = None

    @property
    def out_channels(self) -> int:
        """Background plus one channel per label (labels are contiguous 1..N)."""
        return len(self.labels) + 1

    def __post_init__(self) -> None:
        if sorted(self.labels.values()) != list(range(1, len(self.labels) + 1)):
            raise ValueError(f"{self.name}: label values must be contiguous 1..N, got {self.labels}")
        if not (len(self.spacing) == len(self.patch_size) == self.spatial_dims):
            raise ValueError(f"{self.name}: spacing/patch_size must have {self.spatial_dims} entries")


CT_ORGANS = ModelPreset(
    name="ct_organs",
    modality="CT",
    description="Abdominal CT multi-organ segmentation (liver, spleen, kidneys)",
    labels={"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4},
    spatial_dims=3,
    spacing=(1.5, 1.5, 3.0),
    patch_size=(128, 128, 32),
    intensity={"ct_window": "abdomen"},
    network={"arch": "unet", "channels": (16, 32, 64, 128, 256), "num_res_units": 2, "dropout": 0.1},
)

MRI_BRAIN = ModelPreset(
    name="mri_brain",
    modality="MR",
    description="T1-weighted MRI brain extraction (skull stripping)",
    labels={"brain": 1},
    spatial_dims=3,
    spacing=(2.0, 2.0, 2.0),
    patch_size=(96, 96, 96),
    intensity={"n4": True},
    network={"arch": "unet", "channels": (8, 16, 32, 64, 128), "num_res_units": 2, "dropout": 0.1},
)

XRAY_LUNGS = ModelPreset(
    name="xray_lungs",
    modality="XR",
    description="Chest radiograph lung fields (left and right lung)",
    labels={"lung_left": 1, "lung_right": 2},
    spatial_dims=2,
    spacing=(1.0, 1.0),
    patch_size=(256, 256),
    working_size=(256, 256),
    intensity={"equalization": "clahe"},
    network={"arch": "unet", "channels": (16, 32, 64, 128, 256), "num_res_units": 2, "dropout": 0.1},
)

PRESETS: dict[str, ModelPreset] = {p.name: p for p in (CT_ORGANS, MRI_BRAIN, XRAY_LUNGS)}


def get_preset(name: str) -> ModelPreset:
    """Return the preset called ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(PRESETS))}") from None


def build_network(preset: ModelPreset) -> torch.nn.Module:
    """The preset's U-Net (one input channel, background + one output channel per label)."""
    return build_unet(preset.spatial_dims, 1, preset.out_channels, **preset.network)


def preset_for_checkpoint(preset: ModelPreset, checkpoint: dict[str, Any]) -> ModelPreset:
    """``preset`` on the working grid ``checkpoint`` was trained on (its saved spacing and patch), so
    weights trained on another grid are never run on the wrong one."""
    spacing, patch = checkpoint.get("spacing"), checkpoint.get("patch_size")
    return replace(
        preset,
        spacing=tuple(spacing) if spacing else preset.spacing,
        patch_size=tuple(patch) if patch else preset.patch_size,
    )
