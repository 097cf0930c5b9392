"""Interactive infer task: a model's click-guided twin, served as MONAI Label type ``deepedit``.

3D Slicer's SmartEdit panel sends, for a ``deepedit`` model, every label's landmarks as
``params[<label name>] = [[i, j, k], ...]`` plus ``label`` (the segment being edited); a ``background``
segment's landmarks are background clicks. Deepgrow's ``label`` / ``foreground`` / ``background`` form
is accepted too. Clicks are voxel indices of the image as the viewer has it. Without clicks the twin
answers in its auto mode, so it also serves as a segmentation model.
"""

from __future__ import annotations

import threading
from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferType

from lib.inference.config import InferConfig
from lib.inference.predictor import Prediction, Predictor
from lib.interactive.editing import ClickEditor
from lib.interactive.guidance import BACKGROUND, parse_clicks
from lib.io.options import parse_bool
from monailabel_app.tasks.infer import SegmentationInfer


class InteractiveInfer(SegmentationInfer):
    """The twin of one model (``plans`` with ``interactive``); see :mod:`lib.interactive.editing` for
    what a click does. ``/info`` lists its labels with ``background`` (0), the segment 3D Slicer
    places background clicks on. ``reset_state`` (Slicer's) forgets the image's last answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.type = InferType.DEEPEDIT
        self.labels = {BACKGROUND: 0, **self.labels}
        self._editor: ClickEditor | None = None
        self._edit_lock = threading.Lock()

    def is_valid(self) -> bool:
        """Always listed (as untrained until a version exists), so the twin can be trained from a viewer."""
        return True

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["clicks"] = (
            "params[<label>] = [[i, j, k], ...] (voxel indices of the image) for each label and "
            f"'{BACKGROUND}'; 'label' names the label being edited (the others stay as they were)"
        )
        return info

    def predict(self, predictor: Predictor, request: dict[str, Any], options: InferConfig) -> Prediction:
        clicks = parse_clicks(request, predictor.preset.labels, predictor.preset.spatial_dims)
        try:
            reset = parse_bool(request.get("reset_state", False))
        except ValueError as e:
            raise ValueError(f"reset_state: {e}") from None
        with self._edit_lock:  # one edit at a time: each starts from the last answer
            if self._editor is None or self._editor.predictor is not predictor:
                self._editor = ClickEditor(predictor)  # a newly published version starts afresh
            return self._editor(request["image"], clicks, options, reset=reset)
