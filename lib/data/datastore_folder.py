"""The labelled images of a MONAI Label folder datastore, for the training CLI and the benchmarks."""

from __future__ import annotations

import os


def datastore_items(folder: str) -> list[dict[str, str]]:
    """{"image", "label"} pairs of a MONAI Label folder datastore (labels in labels/final, same name)."""
    items = []
    for name in sorted(os.listdir(folder)):
        label = os.path.join(folder, "labels", "final", name)
        if name.endswith((".nii.gz", ".nii", ".nrrd", ".png")) and os.path.exists(label):
            items.append({"image": os.path.join(folder, name), "label": label})
    return items
