"""Versioned model checkpoints: published atomically, newest complete version served, old ones kept."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from lib.io.atomic import atomic_path

_VERSION = re.compile(r"^v(\d{4,})\.pt$")


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` beside ``path``, fsync, then rename into place."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


class ModelStore:
    """Checkpoints of one model as ``<root>/v0001.pt``, ``v0002.pt`` … (higher = newer).

    Only complete files ever carry a version name (they are renamed into place), so the newest
    version is always loadable. ``keep`` bounds how many versions stay on disk.
    """

    def __init__(self, root: str | os.PathLike, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.root = Path(root)
        self.keep = keep

    def versions(self) -> list[int]:
        """Published version numbers, oldest first."""
        if not self.root.is_dir():
            return []
        found = (_VERSION.match(p.name) for p in self.root.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, version: int) -> Path:
        """File of ``version`` (which may not exist)."""
        return self.root / f"v{version:04d}.pt"

    def latest(self) -> tuple[int, Path] | None:
        """(version, path) of the newest published checkpoint, or None."""
        versions = self.versions()
        return (versions[-1], self.path(versions[-1])) if versions else None

    def publish(self, checkpoint: dict[str, Any]) -> int:
        """Write ``checkpoint`` as the next version and prune beyond ``keep``; returns the version."""
        versions = self.versions()
        version = (versions[-1] if versions else 0) + 1
        save_atomic({**checkpoint, "version": version}, self.path(version))
        for old in self.versions()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        return version

    def rollback(self, version: int) -> int:
        """Serve ``version`` again by republishing a copy of it as the newest version."""
        src = self.path(version)
        if not src.exists():
            raise ValueError(f"no model version {version}; available: {self.versions()}")
        new = self.versions()[-1] + 1
        with atomic_path(self.path(new), suffix=".pt") as tmp:
            shutil.copyfile(src, tmp)
        return new
