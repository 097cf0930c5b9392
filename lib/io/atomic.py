"""Write files aside and rename them into place: readers see the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temp path beside ``dest``; on success fsync it and rename it onto ``dest``.

    If the block raises, the temp file is removed and ``dest`` is untouched. ``suffix`` keeps the
    extension writers dispatch on (e.g. ".nii.gz"). The temp name starts with "." so folder listings
    that look for data files skip it.
    """
    dest = os.fspath(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; published files are readable like any other
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(dest: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON onto ``dest`` through :func:`atomic_path`."""
    with atomic_path(dest, suffix=".json") as tmp, open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
