"""Public fixture cases of the video_action grader, computed from the reference.

`torchgrade author fixtures video_action` runs `build` against the hidden reference and stores
the result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. The public clip is ``torchgrade.course.video``'s ``ClipSet(PUBLIC_SEED)``: the check
has the worker write it, and compares the student's frames with the reference's decoding of
the same clip written here (with a tolerance, as OpenCV builds may decode a little
differently). The public seed is not the rubric's ``clip_seed``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchgrade.course import video

PUBLIC_SEED = 20261201
UNIFORM_PAIRS = [[10, 4], [16, 8], [7, 3], [5, 8], [1, 3], [100, 6], [30, 11]]
PARSE_TEXTS = ['{"action": "wave"}', '```json\n{"action": "Sit Down"}\n```',
               "The person is waving.", "I would say: SIT-DOWN", "wave or jump", "waves"]
PARSE_ACTIONS = ["wave", "jump", "sit_down"]


def _keyframe_clip() -> np.ndarray:
    """Scenes of 4, 3 and 5 frames (two cuts) with small motion inside each scene."""
    return video.cut_clip(PUBLIC_SEED % 1000, frames=12, cuts=(4, 7), height=16, width=16)


def build(reference: Any) -> dict[str, dict[str, Any]]:
    uniform = {"pairs": UNIFORM_PAIRS,
               "expected": [reference.uniform_frame_indices(t, n) for t, n in UNIFORM_PAIRS]}
    frames = _keyframe_clip()
    ks = [1, 2, 4]
    keyframes = {"frames": torch.from_numpy(frames.copy()), "ks": ks,
                 "expected": [reference.keyframe_indices(frames.copy(), k) for k in ks]}
    analyzer = reference.VideoAnalyzer()
    expected: list[str | None] = []
    for text in PARSE_TEXTS:
        try:
            expected.append(analyzer.parse_action_response(text, PARSE_ACTIONS))
        except ValueError:
            expected.append(None)
    parse = {"texts": PARSE_TEXTS, "actions": PARSE_ACTIONS, "expected": expected}
    folder = Path(tempfile.mkdtemp(prefix="video-action-fixtures-"))
    paths = video.write_plan(folder, video.clip_plan(PUBLIC_SEED))
    name = "action_0.mp4"
    got, indices = analyzer.extract_frames(paths[name], 8)
    extract = {"seed": PUBLIC_SEED, "name": name, "indices": indices,
               "frames": torch.from_numpy(got.copy())}
    return {"uniform": uniform, "keyframes": keyframes, "parse": parse, "extract": extract}
