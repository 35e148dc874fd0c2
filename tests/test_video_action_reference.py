"""Is the video_action reference right? Fast checks against independent computations.

The grader trusts ``solutions/video_action/video_action.py`` value for value, so it is checked
here without the sandbox: the sampler against the contract's integer formula (and the float
formulas it must not be), keyframes against clips with cuts at known frames and ties, decoding
against the rendered pixels (RGB, counts, short and broken files), the VLM request's structure
and colours, the parser on JSON, fences, plain and ambiguous text, and ``recognize_action``
end to end with the OpenAI-style client double and a fixed classifier. The course's clip
generator is checked for determinism (the grader and the worker must render the same clips).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from torchgrade.course import video
from torchgrade.course.fake_openai import FakeOpenAIClient

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = list(video.ACTIONS)


def _load():
    path = ROOT / "solutions" / "video_action" / "video_action.py"
    spec = importlib.util.spec_from_file_location("video_action_reference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("clips")
    plan = video.clip_plan(7)
    paths = video.write_plan(folder, plan)
    return {item["name"]: {**item, "path": paths[item["name"]]} for item in plan}


def test_uniform_indices_are_exact_segment_centres():
    for total in range(1, 60):
        for num in range(1, 60):
            got = ref.uniform_frame_indices(total, num)
            centres = [math.floor((i + 0.5) * total / num) for i in range(num)]  # exact here
            assert got == centres
            assert all(0 <= i < total for i in got) and got == sorted(got)
    assert ref.uniform_frame_indices(2**53 + 1, 3) == [(2**53 + 1) // 6, (2**53 + 1) // 2,
                                                       5 * (2**53 + 1) // 6]


def test_float_formulas_that_the_grader_catches_do_differ():
    """Is the float sampler the grader fails really wrong somewhere (and on a public pair)?"""
    def seg(t, n):
        return [int(t / n * (i + 0.5)) for i in range(n)]
    assert seg(30, 11) != ref.uniform_frame_indices(30, 11)
    assert sum(seg(t, n) != ref.uniform_frame_indices(t, n)
               for t in range(1, 300) for n in range(1, 40)) > 100


@pytest.mark.parametrize("args", [(0, 3), (5, 0), (-1, 2), (True, 2), (2.0, 2)])
def test_uniform_indices_refuse_bad_arguments(args):
    with pytest.raises(ValueError, match="total_frames|num_frames"):
        ref.uniform_frame_indices(*args)


def test_keyframes_find_cuts_and_break_ties_low():
    frames = video.cut_clip(3, frames=20, cuts=(6, 13))
    assert ref.keyframe_indices(frames, 2) == [6, 13]
    tie = np.zeros((7, 4, 4, 3), dtype=np.uint8)
    tie[2:4] = 100  # jumps of 100 at 2 and at 4
    assert ref.keyframe_indices(tie, 1) == [2]
    assert ref.keyframe_indices(tie, 2) == [2, 4]
    assert ref.keyframe_indices(tie, 3) == [1, 2, 4]  # the rest are all ties at 0
    with pytest.raises(ValueError, match="num_keyframes"):
        ref.keyframe_indices(tie, 7)


def test_extract_frames_returns_the_rendered_rgb_frames(clips):
    analyzer = ref.VideoAnalyzer()
    item = clips["action_0.mp4"]
    frames, idx = analyzer.extract_frames(item["path"], 8)
    assert frames.dtype == np.uint8 and frames.shape == (8, 32, 32, 3)
    assert idx == ref.uniform_frame_indices(16, 8)
    rendered = video.plan_frames(item)[idx]
    assert np.abs(frames.astype(int) - rendered).mean() < 6  # mp4v is lossy
    colour, _ = analyzer.extract_frames(clips["colour.mp4"]["path"], 2)
    assert colour[:, -4:, 4:20, 0].mean() > 150 > colour[:, -4:, 4:20, 2].mean()  # red left


def test_short_video_and_keyframe_strategy(clips):
    analyzer = ref.VideoAnalyzer()
    frames, idx = analyzer.extract_frames(clips["short.mp4"]["path"], 8)
    assert frames.shape[0] == 8 and idx == [0, 0, 1, 2, 2, 3, 4, 4]
    _, idx = analyzer.extract_frames(clips["short.mp4"]["path"], 8, "keyframe")
    assert idx == [1, 2, 3, 4, 4, 4, 4, 4]
    for name in ("cuts_0.mp4", "cuts_1.mp4"):
        _, idx = analyzer.extract_frames(clips[name]["path"], 2, "keyframe")
        assert idx == clips[name]["cuts"]


@pytest.mark.parametrize("name", ["empty.mp4", "truncated.mp4", "truncated_tail.mp4", "text.mp4",
                                  "zero_frames.mp4", "missing.mp4"])
def test_broken_files_raise_value_error_naming_the_path(clips, name):
    with pytest.raises(ValueError, match=name):
        ref.VideoAnalyzer().extract_frames(clips[name]["path"], 4)


def test_truncated_tail_reports_more_frames_than_decode(clips):
    """Is truncated_tail.mp4 the contract's truncated file: it opens, reports 16 frames, and
    fewer decode? (faststart itself keeps every frame when nothing is cut.)"""
    cap = cv2.VideoCapture(clips["truncated_tail.mp4"]["path"])
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 16
    cap.release()
    assert 0 < len(video.read_video(clips["truncated_tail.mp4"]["path"])) < 16
    whole = Path(clips["action_0.mp4"]["path"]).read_bytes()
    moved = clips["action_0.mp4"]["path"] + ".fast.mp4"
    Path(moved).write_bytes(video.faststart(whole))
    assert np.array_equal(video.read_video(moved), video.read_video(clips["action_0.mp4"]["path"]))


def test_clips_are_reproducible_files(tmp_path):
    """Do two renders of one seed give the same pixels and the same mp4 bytes (the grader and
    the worker each write their own copy)?"""
    a = video.render_clip("rotate", 11, 16)
    assert np.array_equal(a, video.render_clip("rotate", 11, 16))
    plan = video.clip_plan(5)
    digests = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        paths = video.write_plan(tmp_path / str(k), plan)
        digests.append(hashlib.sha256(Path(paths["action_3.mp4"]).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    clipset = video.ClipSet(5)
    assert sorted(clipset.manifest()) == sorted(item["name"] for item in plan)
    assert video.ClipSet(5).folder == clipset.folder  # one copy per process


def test_no_single_frame_tells_left_from_right():
    """A clip moving left, reversed in time, is a clip moving right: the frames are the same."""
    left = video.render_clip("move_left", 9, 8)
    right = video.render_clip("move_right", 9, 8)
    assert np.array_equal(left[::-1], right)


def test_vlm_messages_structure_and_colours():
    frames = np.zeros((2, 20, 30, 3), dtype=np.uint8)
    frames[..., 0] = 220  # red
    messages = ref.VideoAnalyzer().build_vlm_messages(frames, ["wave", "jump"])
    assert [m["role"] for m in messages] == ["system", "user"]
    parts = messages[1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 2 and all(p["image_url"]["detail"] == "low" for p in images)
    url = images[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    raw = base64.b64decode(url.split(",", 1)[1])
    bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert bgr[..., 2].mean() > 180 and bgr[..., 0].mean() < 40  # still red
    assert parts[1]["text"] == "Frame 1/2:"
    assert "wave" in parts[-1]["text"] and "JSON" in parts[-1]["text"]
    big = np.zeros((1, 300, 1200, 3), dtype=np.uint8)
    url = ref.VideoAnalyzer().build_vlm_messages(big, ["a"])[1]["content"][2]["image_url"]["url"]
    img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), 1)
    assert max(img.shape[:2]) == 512


@pytest.mark.parametrize(("text", "want"), [
    ('{"action": "move_left"}', "move_left"),
    ('```json\n{"action": "Move-Up"}\n```', "move_up"),
    ("It  GROWS? no: it is grow", "grow"),
    ("move left or move right", None),
    ("growth", None),
    ('{"action": "jump"}', None),
    ('{"label": "grow"}', None),
])
def test_parse_action_response(text, want):
    analyzer = ref.VideoAnalyzer()
    if want is None:
        with pytest.raises(ValueError):
            analyzer.parse_action_response(text, ACTIONS)
    else:
        assert analyzer.parse_action_response(text, ACTIONS) == want


def test_recognize_action_with_the_client_double(clips):
    fake = FakeOpenAIClient(['{"action": "rotate"}'])
    analyzer = ref.VideoAnalyzer(client=fake, model="m")
    pred = analyzer.recognize_action(clips["action_1.mp4"]["path"], ACTIONS, num_frames=3)
    assert pred.label == "rotate" and pred.scores["rotate"] == 1.0
    assert sum(pred.scores.values()) == 1.0
    (req,) = fake.recorded()
    assert req["model"] == "m" and "max_tokens" in req
    assert sum(p["type"] == "image_url" for p in req["messages"][1]["content"]) == 3
    with pytest.raises(RuntimeError):
        ref.VideoAnalyzer().recognize_action(clips["action_1.mp4"]["path"], ACTIONS)


def test_recognize_action_with_a_classifier(clips):
    probe = video.LinearProbeClassifier(len(ACTIONS), 8, seed=1)
    pred = ref.VideoAnalyzer(classifier=probe).recognize_action(clips["action_2.mp4"]["path"],
                                                                ACTIONS)
    frames = video.read_video(clips["action_2.mp4"]["path"])[ref.uniform_frame_indices(16, 8)]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None]
    want = torch.softmax(probe(x)[0].double(), 0)
    got = torch.tensor([pred.scores[a] for a in ACTIONS], dtype=torch.float64)
    torch.testing.assert_close(got, want)
    assert pred.label == ACTIONS[int(want.argmax())]


def test_classifier_shapes_and_a_tiny_training_run():
    x, y = video.clip_tensors(0, 16, frames=4, height=16, width=16)
    torch.manual_seed(0)
    model = ref.train_action_classifier(x, y, epochs=1, lr=1e-3,
                                        generator=torch.Generator().manual_seed(0))
    assert isinstance(model, ref.TemporalActionClassifier) and not model.training
    assert model(x[:3]).shape == (3, len(ACTIONS))
    with pytest.raises(ValueError, match="clips"):
        model(x[:, :3])
