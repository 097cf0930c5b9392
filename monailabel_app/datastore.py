"""A local datastore that validates before it stores and never leaves a half-written file."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Collection
from typing import Any

from fastapi import HTTPException
from filelock import FileLock
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore

from lib.io.atomic import atomic_path
from lib.io.validate import InvalidUpload, check_image, check_label

logger = logging.getLogger(__name__)

PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_name(kind: str, value: str) -> str:
    """``value`` is a plain name (no separators, no ``..``, bounded length) or HTTP 400."""
    if not isinstance(value, str) or not PLAIN_NAME.match(value) or ".." in value:
        raise HTTPException(400, f"{kind}: {value!r} is not a valid name (letters, digits, . _ -; max 200)")
    return value


def _copy_into(src: str, dest: str) -> None:
    """Copy ``src`` beside ``dest`` and rename it into place (atomic on one filesystem)."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


class CheckedLocalDatastore(LocalDatastore):
    """LocalDatastore whose uploads are validated (4xx with the reason) and written atomically.

    Images must be readable, of a dimensionality some model serves, with finite values; labels must
    be integer maps on their image's grid holding only declared label values.
    """

    def __init__(
        self, datastore_path: str, label_values: Collection[int], spatial_dims: Collection[int], **kwargs: Any
    ) -> None:
        self.label_values = set(label_values)
        self.spatial_dims = set(spatial_dims)
        super().__init__(datastore_path, **kwargs)
        if getattr(self, "_handler", None) is not None:  # auto reload: our writes arrive as renames
            self._handler.on_moved = self._on_moved

    def _on_moved(self, event: Any) -> None:
        """A file renamed into place (how every write here lands) counts as created or modified."""
        if event.dest_path != self._datastore_config_path:
            self._on_any_event(event)
        elif self._ignore_event_config:
            self._ignore_event_config = False
        else:
            self._init_from_datastore_file()

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        guessed, ext = self._to_id(os.path.basename(image_filename))
        image_id = check_name("image", image_id or guessed)
        try:
            check_image(image_filename, self.spatial_dims)
        except InvalidUpload as e:
            raise HTTPException(422, f"image rejected: {e}") from None
        name = self._filename(image_id, ext)
        with FileLock(self._lock_file):
            _copy_into(image_filename, os.path.join(self._datastore.image_path(), name))
            info = dict(image_info or {}, ts=int(time.time()), name=name)
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(info=info, ext=ext))
            self._update_datastore_file(lock=False)
        logger.info("added image %s", image_id)
        return image_id

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]
    ) -> str:
        check_name("image", image_id)
        check_name("tag", label_tag)
        obj = self._datastore.objects.get(image_id)
        if not obj:
            raise HTTPException(404, f"image: unknown image id {image_id!r}")
        try:
            check_label(label_filename, self.get_image_uri(image_id), self.label_values)
        except InvalidUpload as e:
            raise HTTPException(422, f"label rejected: {e}") from None
        _, ext = self._to_id(os.path.basename(label_filename))
        name = self._filename(image_id, ext)
        label_dir = self._datastore.label_path(label_tag)
        with FileLock(self._lock_file):
            os.makedirs(label_dir, exist_ok=True)
            _copy_into(label_filename, os.path.join(label_dir, name))
            obj.labels[label_tag] = DataModel(
                info=dict(label_info or {}, ts=int(time.time()), name=name), ext=ext
            )
            self._update_datastore_file(lock=False)
        logger.info("saved label %s (%s)", image_id, label_tag)
        return image_id

    def _update_datastore_file(self, lock: bool = True) -> None:
        """Write the datastore index beside itself and rename it into place (never a truncated index)."""

        def write() -> None:
            self._ignore_event_config = True
            payload = json.dumps(self._datastore.model_dump(exclude={"base_path"}), indent=2, default=str)
            with atomic_path(self._datastore_config_path, suffix=".json") as tmp, open(tmp, "w") as fh:
                fh.write(payload)
            self._config_ts = os.stat(self._datastore_config_path).st_mtime

        if lock:
            with FileLock(self._lock_file):
                write()
        else:
            write()
