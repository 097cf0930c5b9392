"""Which file ``GET /ohif/<path>`` answers with (``monailabel_app.ohif.ohif_file``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from monailabel_app.ohif import CONFIG_DIR, bundle_dir, ohif_file


def served(path: str, roots: tuple[Path, ...] | None = None) -> Path:
    return Path(ohif_file(path, roots).path)


def test_the_apps_config_replaces_the_bundles():
    assert (bundle_dir() / "app-config.js").is_file()
    assert served("app-config.js") == CONFIG_DIR / "app-config.js"


def test_bundle_files_in_subfolders_are_served():
    assert served("assets/favicon-16x16.png") == bundle_dir() / "assets" / "favicon-16x16.png"
    assert ohif_file("031089e563a18ada8441.wasm").media_type == "application/wasm"


@pytest.mark.parametrize("route", ["", "monai-label", "viewer/1.2.3", "assets"])
def test_viewer_routes_and_folders_get_the_index(route):
    assert served(route) == bundle_dir() / "index.html"


def test_paths_leaving_a_root_are_not_served(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "bundle" / "index.html").write_text("<html></html>")
    roots = (tmp_path / "config", tmp_path / "bundle")
    for path in ("../secret.txt", "../../secret.txt", str(tmp_path / "secret.txt")):
        assert served(path, roots) == tmp_path / "bundle" / "index.html"


def test_a_missing_bundle_is_a_404(tmp_path):
    with pytest.raises(HTTPException) as e:
        ohif_file("", (tmp_path,))
    assert e.value.status_code == 404 and "OHIF is not installed" in e.value.detail
