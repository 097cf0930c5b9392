"""Model plans: one definition per model, shared by training and inference.

A plan names the modality's intensity normalisation (a scheme of
:data:`lib.preprocessing.normalization.NORMALIZATION` with its parameters), the working voxel spacing,
the patch size and the network. The built-in presets below are plans written by hand; a user's own
model gets one from :func:`lib.planning.planner.plan_model` at its first training. Everything that
reads or writes data for a model derives its transforms from its plan, and every published
checkpoint carries the plan it was trained with (:func:`load_model` rebuilds both).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from lib.networks.unet import build_unet
from lib.planning.laterality import symmetric_classes

MODALITIES = ("CT", "MR", "XR")
#: the interactive twin of model ``m`` is served and trained as ``m + TWIN_SUFFIX``
TWIN_SUFFIX = "_deepedit"


@dataclass(frozen=True)
class ModelPreset:
    """A segmentation model's plan.

    ``spacing`` is the working voxel size in mm (RAS axis order), ``patch_size`` the training patch
    and inference window in voxels at that spacing. 2-D plans (radiographs carry no reliable pixel
    size) instead resize every image to ``working_size`` pixels. ``intensity`` is ``{"scheme": name,
    **parameters}`` (see :mod:`lib.preprocessing.normalization`); ``network`` the keyword arguments of
    :func:`lib.networks.unet.build_unet`; ``fingerprint`` the dataset summary a planned model was
    derived from (empty for hand-written presets). ``mirror``: the class each class becomes in a
    left-right mirror image (:mod:`lib.planning.laterality`), or None when the anatomy is not left-right
    symmetric; training mirrors patches and inference may average over the mirror image only where it
    is set. ``interactive``: the click-guided twin of the plan
    (DeepEdit-style, :func:`interactive_twin`), whose network also reads one guidance channel per
    class (background included) beside the image.
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
    fingerprint: dict[str, Any] = field(default_factory=dict)
    mirror: tuple[int, ...] | None = None
    interactive: bool = False

    @property
    def out_channels(self) -> int:
        """Background plus one channel per label (labels are contiguous 1..N)."""
        return len(self.labels) + 1

    @property
    def in_channels(self) -> int:
        """The image, plus for an interactive plan one click-guidance channel per output class."""
        return 1 + (self.out_channels if self.interactive else 0)

    def __post_init__(self) -> None:
        if sorted(self.labels.values()) != list(range(1, len(self.labels) + 1)):
            raise ValueError(f"{self.name}: label values must be contiguous 1..N, got {self.labels}")
        if not (len(self.spacing) == len(self.patch_size) == self.spatial_dims):
            raise ValueError(f"{self.name}: spacing/patch_size must have {self.spatial_dims} entries")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: modality must be one of {MODALITIES}, got {self.modality!r}")
        if "scheme" not in self.intensity:
            raise ValueError(f"{self.name}: intensity needs a 'scheme'")
        if self.mirror is not None and sorted(self.mirror) != list(range(self.out_channels)):
            raise ValueError(f"{self.name}: mirror must reorder classes 0..{self.out_channels - 1}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``plan.json`` and checkpoints hold)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelPreset:
        """Inverse of :meth:`to_dict` (lists become tuples where the dataclass holds tuples)."""
        network = dict(data.get("network", {}))
        for key in ("channels", "strides"):
            if key in network:
                network[key] = tuple(tuple(s) if isinstance(s, list) else s for s in network[key])
        working = data.get("working_size")
        labels = {str(k): int(v) for k, v in data["labels"].items()}
        if "mirror" in data:
            mirror = tuple(int(c) for c in data["mirror"]) if data["mirror"] is not None else None
        else:  # plans written before mirroring was planned: mirrored where no label names a side
            mirror = symmetric_classes(None, labels) if int(data["spatial_dims"]) == 3 else None
        return cls(
            name=data["name"],
            modality=data["modality"],
            description=data.get("description", ""),
            labels=labels,
            spatial_dims=int(data["spatial_dims"]),
            spacing=tuple(float(s) for s in data["spacing"]),
            patch_size=tuple(int(p) for p in data["patch_size"]),
            intensity=dict(data["intensity"]),
            network=network,
            working_size=tuple(int(w) for w in working) if working else None,
            fingerprint=dict(data.get("fingerprint", {})),
            mirror=mirror,
            interactive=bool(data.get("interactive", False)),
        )


CT_ORGANS = ModelPreset(
    name="ct_organs",
    modality="CT",
    description="Abdominal CT multi-organ segmentation (liver, spleen, kidneys)",
    labels={"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4},
    spatial_dims=3,
    spacing=(1.5, 1.5, 3.0),
    patch_size=(128, 128, 32),
    intensity={"scheme": "ct_window", "window": "abdomen"},
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
    intensity={"scheme": "mr_zscore", "n4": True},
    network={"arch": "unet", "channels": (8, 16, 32, 64, 128), "num_res_units": 2, "dropout": 0.1},
    mirror=(0, 1),
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
    intensity={"scheme": "xr_clahe"},
    network={"arch": "unet", "channels": (16, 32, 64, 128, 256), "num_res_units": 2, "dropout": 0.1},
)

PRESETS: dict[str, ModelPreset] = {p.name: p for p in (CT_ORGANS, MRI_BRAIN, XRAY_LUNGS)}


#: where the shipped checkpoints of the built-in presets live (made by ``lib.train --export``)
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "monailabel_app" / "pretrained"


def shipped_checkpoint(name: str) -> Path | None:
    """Where the shipped checkpoint of built-in preset ``name``, or of its interactive twin, is (None
    for other names; the file may not exist, e.g. for a twin nobody trained and shipped)."""
    return SHIPPED_DIR / f"{name}.pt" if name.removesuffix(TWIN_SUFFIX) in PRESETS else None


def get_preset(name: str) -> ModelPreset:
    """Return the preset called ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(PRESETS))}") from None


def build_network(preset: ModelPreset) -> torch.nn.Module:
    """The plan's U-Net (``preset.in_channels`` inputs, background + one output channel per label)."""
    return build_unet(preset.spatial_dims, preset.in_channels, preset.out_channels, **preset.network)


def interactive_twin(plan: ModelPreset) -> ModelPreset:
    """The click-guided twin of ``plan``: the same grid, normalisation, labels and network, with the
    guidance channels added to its input and the name ``plan.name + TWIN_SUFFIX``.

    >>> twin = interactive_twin(CT_ORGANS)
    >>> twin.name, twin.in_channels, twin.out_channels, twin.spacing == CT_ORGANS.spacing
    ('ct_organs_deepedit', 6, 5, True)
    """
    return replace(
        plan,
        name=plan.name + TWIN_SUFFIX,
        description=f"{plan.description} - interactive: clicks add or remove structures",
        interactive=True,
    )


def can_warm_start(plan: ModelPreset, shipped: ModelPreset) -> bool:
    """Whether ``shipped``'s weights are a sound start for ``plan``: same modality and dimensionality,
    and the same network apart from its output channels (so every hidden tensor loads).

    >>> can_warm_start(replace(CT_ORGANS, name="mine", labels={"a": 1}), CT_ORGANS)
    True
    >>> can_warm_start(replace(CT_ORGANS, network={**CT_ORGANS.network, "channels": (8, 16)}), CT_ORGANS)
    False
    """
    keys = ("arch", "channels", "strides", "num_res_units")
    same_network = all(plan.network.get(k) == shipped.network.get(k) for k in keys)
    return plan.modality == shipped.modality and plan.spatial_dims == shipped.spatial_dims and same_network


def plan_summary(plan: ModelPreset) -> dict[str, Any]:
    """What /info shows of a plan: grid, normalisation, network and where the plan came from."""
    summary = {
        "modality": plan.modality,
        "spatial_dims": plan.spatial_dims,
        "spacing": list(plan.spacing),
        "patch_size": list(plan.patch_size),
        "working_size": list(plan.working_size) if plan.working_size else None,
        "intensity": dict(plan.intensity),
        "network": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.network.items()},
        "mirror": list(plan.mirror) if plan.mirror is not None else None,
    }
    if plan.interactive:
        summary["inputs"] = (
            f"image + {plan.out_channels} click-guidance channels (background, then each label)"
        )
    if plan.fingerprint:
        summary["planned_from"] = {
            "cases": plan.fingerprint.get("cases"),
            "modality_source": plan.fingerprint.get("modality_source"),
            "median_shape_at_target": plan.fingerprint.get("median_shape_at_target"),
        }
    return summary


def preset_for_checkpoint(preset: ModelPreset | None, checkpoint: dict[str, Any]) -> ModelPreset:
    """The plan ``checkpoint`` was trained with: its stamped ``plan``, else (checkpoints published
    before plans were stamped) ``preset`` on the checkpoint's saved spacing and patch, so weights
    trained on another grid are never run on the wrong one."""
    if checkpoint.get("plan"):
        return ModelPreset.from_dict(checkpoint["plan"])
    if preset is None:
        raise ValueError("checkpoint carries no plan and no preset was given")
    spacing, patch = checkpoint.get("spacing"), checkpoint.get("patch_size")
    return replace(
        preset,
        spacing=tuple(spacing) if spacing else preset.spacing,
        patch_size=tuple(patch) if patch else preset.patch_size,
    )


def checkpoint_for(
    preset: ModelPreset, state: dict[str, torch.Tensor], meta: dict[str, Any]
) -> dict[str, Any]:
    """The checkpoint layout every part of the project reads: weights plus the plan that built them
    (:func:`load_model` rebuilds the network from it)."""
    return {
        "state_dict": state,
        "preset": preset.name,
        "labels": preset.labels,
        "plan": preset.to_dict(),
        "spacing": list(preset.spacing),
        "patch_size": list(preset.patch_size),
        "meta": meta,
    }


def load_model(
    source: str | os.PathLike[str] | dict[str, Any], preset: ModelPreset | None = None
) -> tuple[ModelPreset, torch.nn.Module, dict[str, Any]]:
    """The one checkpoint loader: (plan, network with the weights, checkpoint) from a path or dict.

    ``preset`` is the fallback plan for checkpoints without a stamped plan. Raises ``ValueError`` when
    the weights do not fit the plan's network.
    """
    checkpoint = (
        source if isinstance(source, dict) else torch.load(source, map_location="cpu", weights_only=True)
    )
    plan = preset_for_checkpoint(preset, checkpoint)
    network = build_network(plan)
    try:
        network.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"checkpoint does not fit the {plan.name} network: {str(e).splitlines()[0]}") from e
    return plan, network, checkpoint
