"""Grader of the video_action assignment (the course's VideoAnalyzer), contract §7 of the spec.

Every check names the mistake it is designed to catch (``catches=``). Public checks compare
with fixtures built from the reference (fixtures/public.safetensors); hidden checks call the
reference live, or compare with what this process computes from clips it rendered itself.

The sandboxed worker cannot see this process's files, so the worker writes the video files:
``torchgrade.course.video:ClipSet(seed)`` renders the clips of this grading run into the
worker's own /tmp and answers their paths as plain data. This process renders the same clips
from the same seed (``video.clip_plan`` / ``video.write_plan``) and decodes its own copies to
know their pixels, labels and cut frames. The clip seed is the rubric's (``clip_seed``), so it
is the same on every run (scores are deterministic) and students, who never see it, cannot
memorise answers.

The VLM path is checked with ``torchgrade.course.fake_openai:FakeOpenAIClient``, a test double
of an OpenAI-style client built in the worker: it records every request (read back as plain
data) and answers with canned replies. No network is used.

The training check trains the student's ``TemporalActionClassifier`` with their
``train_action_classifier`` on plain tensors of freshly rendered clips, and scores the logits
the trained model gives, in the worker, for held-out clips; the accuracy is computed here.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchgrade.checks import (
    check,
    expect_nonconstant,
    expect_raises,
    expect_shape,
    fail,
    measured,
    reveal,
)
from torchgrade.course import video

CLIPS = "torchgrade.course.video:ClipSet"
FAKE = "torchgrade.course.fake_openai:FakeOpenAIClient"
PROBE = "torchgrade.course.video:LinearProbeClassifier"
ACTIONS = list(video.ACTIONS)
SEGMENT_STARTS = ("segment starts (int(i * total / num), as in the course text) instead of "
                  "segment centres")
FLOAT = ("float arithmetic for the segment centres (int((i + 0.5) * (total / num)) or "
         "seg / 2 + seg * i), off by one where the quotient rounds down")
FRAME_ZERO = "frame 0 counted as a keyframe (it has no predecessor), or keyframes not sorted"
BGR = "frames left in OpenCV's BGR order (the course text's) instead of RGB"
CLIP_SEED_DEFAULT = 41


# -- helpers ------------------------------------------------------------------------------------
def _clip_seed(budget: dict) -> int:
    return int(budget.get("clip_seed", CLIP_SEED_DEFAULT))


@functools.lru_cache(maxsize=4)
def local_clips(seed: int) -> dict[str, dict]:
    """The clips ClipSet(seed) writes in the worker, written and decoded here: {name: item}
    with the decoded RGB frames under "decoded" (None for broken files)."""
    folder = Path(tempfile.mkdtemp(prefix="torchgrade-video-"))
    plan = video.clip_plan(seed)
    paths = video.write_plan(folder, plan)
    out = {}
    for item in plan:
        decoded = video.read_video(paths[item["name"]]) if item["kind"] != "broken" and \
            item["kind"] != "missing" else None
        out[item["name"]] = {**item, "decoded": decoded}
    return out


def remote_clips(student, seed: int) -> dict[str, str]:
    """Build ClipSet(seed) in the worker; {name: path there}."""
    clipset = student.construct(CLIPS, seed)
    manifest = clipset.manifest()
    return {name: str(item["path"]) for name, item in manifest.items()}


def as_frames(got: Any, what: str) -> np.ndarray:
    """The student's frames as a uint8 array [T, H, W, 3] (numpy or a torch tensor)."""
    if isinstance(got, torch.Tensor):
        got = got.numpy()
    if not isinstance(got, np.ndarray):
        fail(f"{what} must return frames as an array.", expected="a numpy uint8 array "
             "[T, H, W, 3]", got=type(got).__name__)
    if got.dtype != np.uint8 or got.ndim != 4 or got.shape[-1] != 3:
        fail(f"{what} returned frames of the wrong type or shape.",
             expected="uint8 [T, H, W, 3]", got=f"{got.dtype} {list(got.shape)}",
             hint="cv2 decodes uint8 [H, W, 3] images; stack them, do not scale to float")
    return got


def extract(analyzer, path: str, num: int, strategy: str, what: str
            ) -> tuple[np.ndarray, list[int]]:
    got = analyzer.extract_frames(path, num, strategy)
    if not isinstance(got, tuple | list) or len(got) != 2:
        fail(f"{what} must return (frames, indices).", expected="a pair",
             got=type(got).__name__)
    frames, indices = got
    frames = as_frames(frames, what)
    try:
        indices = [int(i) for i in indices]
    except (TypeError, ValueError):
        fail(f"{what}: indices must be a list of ints.", expected="list[int]",
             got=type(indices).__name__)
    if len(indices) != num or frames.shape[0] != num:
        fail(f"{what} returned the wrong number of frames.", expected=f"{num} frames and "
             f"{num} indices", got=f"{frames.shape[0]} frames, {len(indices)} indices",
             hint="a video with fewer frames than asked still gives num_frames (repeating)")
    return frames, indices


def frame_error(got: np.ndarray, want: np.ndarray) -> float:
    """Mean absolute difference of two uint8 frame stacks (inf if the shapes differ)."""
    if got.shape != want.shape:
        return math.inf
    return float(np.abs(got.astype(np.int16) - want.astype(np.int16)).mean())


def _indices(got: Any, what: str) -> list[int]:
    if not isinstance(got, list | tuple) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in got):
        # Hidden checks show the type only: a function handing back its frames would echo them.
        fail(f"{what} must return a list of ints.", expected="list[int]",
             got=repr(got)[:80] if reveal() else type(got).__name__)
    return list(got)


def _float_mismatches(formula, limit: int) -> list[tuple[int, int]]:
    """(total, num) pairs where a float formula differs from the exact centres."""
    found = []
    for total in range(1, 400):
        for num in range(1, 40):
            exact = [((2 * i + 1) * total) // (2 * num) for i in range(num)]
            if [formula(i, total, num) for i in range(num)] != exact:
                found.append((total, num))
                break
        if len(found) >= limit:
            break
    return found


# -- public checks: fixtures built from the reference -------------------------------------------
@check(points=4, kind="value", visibility="public", catches=f"{SEGMENT_STARTS}; or {FLOAT}",
       rules=("uniform.centres",))
def test_uniform_indices_public(student, fixture_case):
    """uniform_frame_indices matches the reference on the public (total, num) pairs."""
    case = fixture_case("uniform")
    for (total, num), want in zip(case["pairs"], case["expected"], strict=True):
        got = _indices(student.uniform_frame_indices(total, num),
                       f"uniform_frame_indices({total}, {num})")
        if got != want:
            fail(f"uniform_frame_indices({total}, {num}) is wrong.", expected=str(want),
                 got=str(got), hint="segment centres: ((2 * i + 1) * total) // (2 * num)")


@check(points=3, kind="value", visibility="public", catches=FRAME_ZERO,
       rules=("keyframes.diff", "keyframes.top-k", "keyframes.frame-zero"))
def test_keyframes_public(student, fixture_case):
    """keyframe_indices of the public clip with two scene cuts gives the reference's frames
    (1, 2 and 4 keyframes)."""
    case = fixture_case("keyframes")
    frames = case["frames"].numpy()
    for k, want in zip(case["ks"], case["expected"], strict=True):
        got = _indices(student.keyframe_indices(frames, k), f"keyframe_indices(frames, {k})")
        if got != want:
            fail(f"keyframe_indices(frames, {k}) is wrong.", expected=str(want), got=str(got),
                 hint="frames i >= 1 by mean |gray_i - gray_{i-1}|, top k, ties to the lower "
                 "index, returned sorted")


@check(points=3, kind="value", visibility="public", catches="a parser that accepts ambiguous "
       "text, misses fenced JSON, or is case/spacing-sensitive",
       rules=("parse.json", "parse.plain", "parse.spelling", "parse.refuse"))
def test_parse_public(student, fixture_case):
    """parse_action_response reads the public answers as the reference does (JSON, fenced
    JSON, plain text) and refuses the ambiguous ones with ValueError."""
    case = fixture_case("parse")
    analyzer = student.VideoAnalyzer()
    for text, want in zip(case["texts"], case["expected"], strict=True):
        if want is None:
            with expect_raises("ValueError", what=f"parse_action_response({text!r})"):
                analyzer.parse_action_response(text, case["actions"])
            continue
        got = analyzer.parse_action_response(text, case["actions"])
        if got != want:
            fail(f"parse_action_response({text!r}) is wrong.", expected=repr(want),
                 got=repr(got), hint="JSON {\"action\": ...} (also in a ``` fence) or plain "
                 "text naming exactly one action; return the action as spelled in actions")


@check(points=2, kind="robustness", visibility="public",
       catches="no ValueError for total_frames <= 0 or num_frames <= 0",
       rules=("conv.names-argument", "uniform.args"))
def test_bad_arguments_public(student):
    """uniform_frame_indices(0, 4) and (10, 0) raise ValueError naming the argument."""
    with expect_raises("ValueError", what="uniform_frame_indices(0, 4)",
                       mentions="total_frames"):
        student.uniform_frame_indices(0, 4)
    with expect_raises("ValueError", what="uniform_frame_indices(10, 0)", mentions="num_frames"):
        student.uniform_frame_indices(10, 0)


@check(points=3, kind="value", visibility="public", catches=f"{BGR}; or frames scaled to float",
       rules=("extract.output", "extract.uniform", "frames.rgb"))
def test_extract_frames_public(student, fixture_case):
    """extract_frames on the public clip (written in the worker): 8 uint8 RGB frames close to
    the reference's decoding, at the reference's indices."""
    case = fixture_case("extract")
    paths = remote_clips(student, int(case["seed"]))
    analyzer = student.VideoAnalyzer()
    frames, indices = extract(analyzer, paths[case["name"]], 8, "uniform",
                              f"extract_frames({case['name']!r}, 8)")
    if indices != case["indices"]:
        fail("extract_frames picked other frames.", expected=str(case["indices"]),
             got=str(indices), hint="uniform_frame_indices(total_frames, num_frames)")
    err = frame_error(frames, case["frames"].numpy())
    swapped = frame_error(frames[..., ::-1], case["frames"].numpy())
    if err > 4.0:
        fail("extract_frames returned frames unlike the video's.",
             expected="the reference's RGB frames (mean |difference| <= 4)",
             got=f"mean |difference| {err:.1f}" + (" (in BGR order)" if swapped < err else ""),
             hint="cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) after cap.read()")


@check(points=3, kind="value", visibility="public", catches="a request not in the OpenAI chat "
       "format, frames unlabelled or not JPEG data URLs with detail 'low', the actions or the "
       "JSON instruction missing, or recognize_action not asking the client and parsing its "
       "answer", rules=("vlm.messages", "vlm.frames", "vlm.tail", "vlm.jpeg-colours",
                        "recognize.vlm"))
def test_vlm_public(student, fixture_case):
    """build_vlm_messages for 3 small frames has the contract's structure; recognize_action
    with an OpenAI-style client double (its answer canned) returns that answer, scored 1.0."""
    analyzer = student.VideoAnalyzer()
    frames = vlm_frames()
    actions = ["wave", "jump", "sit_down"]
    check_messages(analyzer.build_vlm_messages(frames, actions), frames, actions,
                   "build_vlm_messages(3 frames)")
    case = fixture_case("extract")
    paths = remote_clips(student, int(case["seed"]))
    fake = student.construct(FAKE, ['{"action": "grow"}'])
    pred = student.VideoAnalyzer(client=fake, model="fake-vlm").recognize_action(
        paths[case["name"]], ACTIONS, num_frames=2)
    label, scores = getattr(pred, "label", None), getattr(pred, "scores", None)
    if label != "grow" or not isinstance(scores, dict) or scores.get("grow") != 1.0:
        fail("recognize_action did not return the VLM's answer.", expected="ActionPrediction("
             "label='grow', scores with 'grow': 1.0)", got=repr(pred)[:120],
             hint="client.chat.completions.create(model=self.model, messages=..., "
             "max_tokens=...), then parse_action_response(response.choices[0].message."
             "content, actions)")
    if len(fake.recorded()) != 1:
        fail("recognize_action must call the client once.", expected="1 request",
             got=f"{len(fake.recorded())}")


@check(points=2, kind="shape", visibility="public", catches="a classifier whose logits are not "
       "[B, A], or a training function that does not return the classifier in eval mode",
       rules=("classifier.shapes", "train.returns"))
def test_classifier_public(student):
    """TemporalActionClassifier(4, num_frames=4) maps [2, 4, 3, 16, 16] to [2, 4];
    train_action_classifier for one epoch on 8 small clips returns a TemporalActionClassifier
    in eval mode giving [8, 4] logits."""
    g = torch.Generator().manual_seed(5)
    model = student.TemporalActionClassifier(4, num_frames=4)
    got = student.call(model, torch.rand(2, 4, 3, 16, 16, generator=g), _no_grad=True)
    expect_shape(got, (2, 4), what="TemporalActionClassifier(4, num_frames=4) on "
                 "[2, 4, 3, 16, 16]")
    clips, labels = torch.rand(8, 4, 3, 16, 16, generator=g), torch.arange(8) % 4
    trained = student.train_action_classifier(clips, labels, epochs=1, lr=1e-3,
                                              generator=torch.Generator().manual_seed(6))
    kind = getattr(trained, "type_name", None) or type(trained).__name__
    if kind != "TemporalActionClassifier":
        fail("train_action_classifier must return the trained TemporalActionClassifier.",
             expected="a TemporalActionClassifier", got=kind)
    if trained.training is not False:
        fail("train_action_classifier returned the classifier in train mode.",
             expected="model.eval() before returning it", got="train mode")
    expect_shape(student.call(trained, clips, _no_grad=True), (8, 4),
                 what="the trained classifier's logits on [8, 4, 3, 16, 16]")


# -- hidden checks: frame sampling ----------------------------------------------------------------
EDGE_CASES = [(1, 1), (1, 8), (2, 8), (7, 7), (8, 3), (5, 8), (100, 1), (1000, 7), (3, 2),
              (10**9 + 7, 5), (2**53 + 1, 3)]


@check(points=5, kind="value", catches=f"{SEGMENT_STARTS}; {FLOAT}", rules=("uniform.centres",))
def test_uniform_indices_exact(student, reference):
    """uniform_frame_indices equals the exact centres on the edge cases (1 frame, more frames
    asked than there are, huge videos) and on pairs where float formulas are off by one."""
    edge = "an edge case (1 frame, more frames asked than there are, or a huge video)"
    rounding = "a case where float arithmetic is off by one"
    pairs = [(t, n, edge) for t, n in EDGE_CASES]
    pairs += [(t, n, rounding) for t, n in
              _float_mismatches(lambda i, t, n: int((i + 0.5) * (t / n)), 4)
              + _float_mismatches(lambda i, t, n: int(t / n / 2 + t / n * i), 4)]
    for total, num, kind in pairs:
        want = reference.uniform_frame_indices(total, num)
        got = _indices(student.uniform_frame_indices(total, num), "uniform_frame_indices")
        if got != want:
            starts = [(i * total) // num for i in range(num)]
            fail(f"uniform_frame_indices is wrong on {kind}" + (
                 " (it returns segment starts)." if got == starts else "."),
                 expected="the exact segment centres",
                 got=f"{sum(a != b for a, b in zip(got, want, strict=False))} of {num} indices "
                 "differ" if len(got) == num else f"{len(got)} indices",
                 hint="integer arithmetic only: ((2 * i + 1) * total) // (2 * num)")


def _expect_real_indices(student) -> None:
    """Evidence of a real answer for the sampling invariants: the indices follow the video's
    length (10 frames and 1000 frames, 4 asked). ``[0] * num_frames`` is in range, sorted and
    of the right count for every video."""
    first, second = (_indices(student.uniform_frame_indices(total, 4),
                              f"uniform_frame_indices({total}, 4)") for total in (10, 1000))
    expect_nonconstant(first, second, what="uniform_frame_indices(total_frames, 4)",
                       depends_on="total_frames", hint="spread the indices over the whole "
                       "video: the centres of num_frames equal segments of [0, total_frames)")


@check(points=4, kind="invariant", catches="indices outside [0, total_frames), decreasing, or "
       "not num_frames of them (e.g. a sampler that skips repeats or rounds up)",
       rules=("uniform.range",))
@given(total=st.integers(1, 10**7), num=st.integers(1, 300))
@example(total=1, num=300)
@example(total=299, num=300)
def test_uniform_indices_invariants(student, total, num):
    """For any total_frames and num_frames: num_frames indices, non-decreasing, in range; and
    the indices follow the video's length."""
    _expect_real_indices(student)
    got = _indices(student.uniform_frame_indices(total, num), "uniform_frame_indices")
    if len(got) != num:
        fail("uniform_frame_indices returned the wrong count.", expected="num_frames indices",
             got=f"{len(got) - num:+d} indices")
    if any(i < 0 or i >= total for i in got):
        fail("uniform_frame_indices returned an index out of range.",
             expected="indices in [0, total_frames)",
             got="a negative index" if min(got) < 0 else "an index >= total_frames")
    if any(b < a for a, b in zip(got, got[1:], strict=False)):
        fail("uniform_frame_indices is not non-decreasing.", expected="sorted indices",
             got="a decrease")


def tie_frames() -> np.ndarray:
    """[9, 6, 6, 3] frames: cuts at 3 and 6 of equal size (a tie), a smaller jump at 8."""
    frames = np.zeros((9, 6, 6, 3), dtype=np.uint8)
    frames[3:6] = 120
    frames[6:] = 0
    frames[8] = 40
    frames[1, 0, 0] = 5  # tiny changes inside scenes
    return frames


@check(points=5, kind="value", catches=f"{FRAME_ZERO}; ties not broken to the lower index; "
       "the difference not on grayscale (or of the wrong conversion, BGR2GRAY), or not mean "
       "absolute", rules=("keyframes.diff", "keyframes.top-k"))
def test_keyframes_exact(student, reference, budget):
    """keyframe_indices equals the reference: equal-size cuts (a tie), the rendered scene-cut
    clips of this run, and coloured frames where RGB2GRAY and BGR2GRAY disagree."""
    cases = [(tie_frames(), k) for k in (1, 2, 3)]
    for item in local_clips(_clip_seed(budget)).values():
        if item["kind"] == "cuts":
            cases += [(item["decoded"], 2), (item["decoded"], 5)]
    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, size=(6, 1, 1, 3)).repeat(4, 1).repeat(4, 2)
    colour[:, :, :, 1] = 128  # only red and blue change: the conversions weigh them unlike
    cases += [(colour.astype(np.uint8), 2), (colour.astype(np.uint8), 3)]
    for frames, k in cases:
        want = reference.keyframe_indices(frames.copy(), k)
        got = _indices(student.keyframe_indices(frames, k),
                       f"keyframe_indices(frames [{frames.shape[0]}, ...], {k})")
        if got != want:
            fail(f"keyframe_indices with num_keyframes={k} on {frames.shape[0]} frames is "
                 "wrong.", expected=f"the reference's {k} keyframes",
                 got=f"{len(set(got) ^ set(want))} frames differ" + (
                     "; frame 0 included" if 0 in got else "") + (
                     "; not sorted" if got != sorted(got) else ""),
                 hint="mean |gray_i - gray_{i-1}| for i >= 1 with COLOR_RGB2GRAY; top k, ties "
                 "to the lower index; sorted")


def cut_frames(at: int) -> np.ndarray:
    """[6, 4, 4, 3] frames, black until frame ``at`` and grey from it: one cut, at ``at``."""
    frames = np.zeros((6, 4, 4, 3), dtype=np.uint8)
    frames[at:] = 200
    return frames


def _expect_real_keyframes(student) -> None:
    """Evidence of a real answer for the keyframe invariants: the keyframe follows the cut
    (frames cut at 2 and at 4). ``list(range(1, k + 1))`` is sorted, distinct and in [1, T)
    for any frames."""
    first, second = (_indices(student.keyframe_indices(cut_frames(at), 1),
                              f"keyframe_indices(frames cut at {at}, 1)") for at in (2, 4))
    expect_nonconstant(first, second, what="keyframe_indices(frames, 1)",
                       depends_on="the frames", hint="rank frames i >= 1 by the mean absolute "
                       "difference of their grayscale image from frame i - 1's")


@check(points=3, kind="invariant", catches=f"{FRAME_ZERO}; num_keyframes not respected "
       "(duplicates, too few or too many)", rules=("keyframes.top-k", "keyframes.frame-zero"))
@given(t=st.integers(2, 12), k=st.integers(1, 11), seed=st.integers(0, 2**31 - 1),
       levels=st.integers(1, 4))
@example(t=2, k=1, seed=0, levels=1)
def test_keyframe_invariants(student, t, k, seed, levels):
    """For any frames and num_keyframes <= T - 1: that many distinct indices, sorted, in
    [1, T); frames with few grey levels make many ties. The keyframe follows a cut."""
    _expect_real_keyframes(student)
    k = min(k, t - 1)
    rng = np.random.default_rng(seed)
    frames = (rng.integers(0, levels + 1, size=(t, 4, 5, 3)) * (255 // levels)).astype(np.uint8)
    got = _indices(student.keyframe_indices(frames, k), "keyframe_indices")
    if len(got) != k or len(set(got)) != k:
        fail("keyframe_indices does not return num_keyframes distinct frames.",
             expected="num_keyframes distinct indices",
             got=f"{len(got)} indices, {len(set(got))} distinct")
    if got != sorted(got) or min(got) < 1 or max(got) >= t:
        fail("keyframe_indices returned indices out of order or out of [1, T).",
             expected="sorted indices in [1, T)", got="frame 0 included" if 0 in got else
             "unsorted" if got != sorted(got) else "an index >= T")


@check(points=3, kind="robustness", catches="no ValueError (naming the argument) for "
       "num_keyframes > T - 1, an unknown strategy or a negative total_frames",
       rules=("conv.names-argument", "keyframes.count", "uniform.args", "extract.strategy"))
def test_bad_arguments_hidden(student, budget):
    """num_keyframes > T - 1, strategy="random" and total_frames=-3 raise ValueError."""
    frames = tie_frames()
    with expect_raises("ValueError", what="keyframe_indices(9 frames, 9)",
                       mentions="num_keyframes"):
        student.keyframe_indices(frames, 9)
    with expect_raises("ValueError", what="keyframe_indices(9 frames, 0)",
                       mentions="num_keyframes"):
        student.keyframe_indices(frames, 0)
    with expect_raises("ValueError", what="uniform_frame_indices(-3, 2)",
                       mentions="total_frames"):
        student.uniform_frame_indices(-3, 2)
    paths = remote_clips(student, _clip_seed(budget))
    analyzer = student.VideoAnalyzer()
    with expect_raises("ValueError", what="extract_frames(path, 4, strategy='random')",
                       mentions="strategy"):
        analyzer.extract_frames(paths["action_0.mp4"], 4, "random")


# -- hidden checks: decoding video files --------------------------------------------------------
@check(points=5, kind="value", catches=f"{BGR}; frames picked at other indices (segment starts, "
       "seeking that lands elsewhere), float frames, or the wrong count",
       rules=("extract.output", "extract.uniform", "frames.rgb"))
def test_extract_frames_uniform(student, budget):
    """extract_frames on this run's clips: uniform indices of the decoded frame count, and
    uint8 RGB frames equal to this process's decoding of the same file."""
    seed = _clip_seed(budget)
    paths = remote_clips(student, seed)
    analyzer = student.VideoAnalyzer()
    for name, item in local_clips(seed).items():
        if item["kind"] not in ("action", "cuts") or name == "short.mp4":
            continue
        decoded = item["decoded"]
        for num in (8, 5):
            frames, indices = extract(analyzer, paths[name], num, "uniform",
                                      f"extract_frames(clip, {num})")
            want_idx = [((2 * i + 1) * len(decoded)) // (2 * num) for i in range(num)]
            if indices != want_idx:
                starts = [(i * len(decoded)) // num for i in range(num)]
                fail("extract_frames picked other frames than the uniform segment centres.",
                     expected="uniform_frame_indices(decoded frame count, num_frames)",
                     got="segment starts" if indices == starts else
                     f"{sum(a != b for a, b in zip(indices, want_idx, strict=False))} of "
                     f"{num} indices differ",
                     hint="uniform_frame_indices(total_frames, num_frames), with total_frames "
                     "the number of frames decoded")
            err = frame_error(frames, decoded[want_idx])
            if err > 2.0:
                swapped = frame_error(frames[..., ::-1], decoded[want_idx])
                fail("extract_frames returned frames unlike the video's.",
                     expected="the decoded RGB frames at those indices",
                     got=f"mean |difference| {err:.1f}" + (
                         " (the channels are in BGR order)" if swapped < 1.0 else ""),
                     hint="decode with cv2, then cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)")


@check(points=5, kind="value", catches=BGR, rules=("frames.rgb",))
def test_extract_frames_rgb(student, budget):
    """The colour clip (red left, blue right, a green bar) comes back red left, blue right."""
    paths = remote_clips(student, _clip_seed(budget))
    analyzer = student.VideoAnalyzer()
    frames, _ = extract(analyzer, paths["colour.mp4"], 4, "uniform", "extract_frames(colour)")
    if frames.shape[1:] != (32, 48, 3):
        fail("extract_frames changed the frame size.", expected="[4, 32, 48, 3]",
             got=str(list(frames.shape)))
    bottom = frames[:, -6:].astype(np.float64)  # the bar has not reached the bottom rows...
    left, right = bottom[:, :, 4:20].mean(axis=(0, 1, 2)), bottom[:, :, 28:44].mean(axis=(0, 1, 2))
    if not (left[0] > 150 > left[2] and right[2] > 150 > right[0]):
        fail("extract_frames does not return RGB: the colour clip's colours are swapped.",
             expected="left half red (R high), right half blue (B high)",
             got=f"left mean RGB {np.round(left).astype(int).tolist()}, right "
             f"{np.round(right).astype(int).tolist()}",
             hint="OpenCV decodes BGR: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)")


@check(points=3, kind="value", catches="fewer frames than asked for a short video, or an error "
       "instead of repeating frames",
       rules=("extract.short", "extract.keyframe", "extract.single-frame"))
def test_extract_frames_short_video(student, budget):
    """A 5-frame video asked for 8 frames gives 8 (repeating), uniformly and by keyframes; a
    one-frame video gives frame 0 by keyframes."""
    seed = _clip_seed(budget)
    paths = remote_clips(student, seed)
    decoded = local_clips(seed)["short.mp4"]["decoded"]
    analyzer = student.VideoAnalyzer()
    frames, indices = extract(analyzer, paths["short.mp4"], 8, "uniform",
                              "extract_frames(5-frame video, 8)")
    want = [((2 * i + 1) * len(decoded)) // 16 for i in range(8)]
    if indices != want:
        fail("extract_frames on a 5-frame video asked for 8 frames picked other frames.",
             expected=f"indices {want}", got=f"indices {indices}",
             hint="uniform_frame_indices(5, 8) repeats indices; keep all 8")
    if frame_error(frames, decoded[want]) > 2.0:
        fail("extract_frames on a 5-frame video returned frames unlike the video's.",
             expected="the decoded RGB frames at those indices", got="other pixels" + (
                 " (in BGR order)" if frame_error(frames[..., ::-1], decoded[want]) < 1.0
                 else ""), hint="cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)")
    frames, indices = extract(analyzer, paths["short.mp4"], 8, "keyframe",
                              "extract_frames(5-frame video, 8, 'keyframe')")
    if len(indices) != 8 or indices[4:] != [indices[3]] * 4 or 0 in indices:
        fail("extract_frames(..., strategy='keyframe') on a 5-frame video asked for 8 frames "
             "is wrong.", expected="the 4 keyframes (all of 1..4), then the last one repeated",
             got=str(indices), hint="keyframe_indices(frames, min(num_frames, T - 1)), padded "
             "by repeating the last index")
    single = local_clips(seed)["single.mp4"]["decoded"]
    frames, indices = extract(analyzer, paths["single.mp4"], 4, "keyframe",
                              "extract_frames(1-frame video, 4, 'keyframe')")
    if indices != [0] * 4 or frame_error(frames, single[[0] * 4]) > 2.0:
        fail("extract_frames(..., strategy='keyframe') on a one-frame video is wrong.",
             expected="frame 0 four times, indices [0, 0, 0, 0]", got=f"indices {indices}",
             hint="a one-frame video has no keyframe (frame 0 has no predecessor): return "
             "frame 0 num_frames times")


@check(points=4, kind="value", catches=f"{FRAME_ZERO}; keyframes taken from a subsample "
       "(the course text's every-n-th frame) or not from all decoded frames",
       rules=("extract.keyframe", "keyframes.frame-zero"))
def test_extract_keyframes_recall_cuts(student, budget):
    """extract_frames(strategy="keyframe") on this run's clips with two scene cuts returns the
    cut frames (sorted, never frame 0) and their pixels."""
    seed = _clip_seed(budget)
    paths = remote_clips(student, seed)
    analyzer = student.VideoAnalyzer()
    for name, item in local_clips(seed).items():
        if item["kind"] != "cuts":
            continue
        frames, indices = extract(analyzer, paths[name], 2, "keyframe",
                                  "extract_frames(clip with cuts, 2, 'keyframe')")
        if indices != item["cuts"]:
            early = [c - 1 for c in item["cuts"]]
            fail("the keyframes of a clip with two hard cuts are not the cuts.",
                 expected="the two cut frames, sorted",
                 got=f"{len(set(indices) & set(item['cuts']))} of 2 cuts" + (
                     ", each one frame early" if indices == early else "") + (
                     ", frame 0 included" if 0 in indices else ""),
                 hint="diff of frame i with frame i-1, for every decoded frame i >= 1")
        if frame_error(frames, item["decoded"][indices]) > 2.0:
            bgr = frame_error(frames[..., ::-1], item["decoded"][indices]) < 1.0
            fail("extract_frames(strategy='keyframe') returned other pixels than the "
                 "keyframes'.", expected="the RGB frames at the keyframe indices",
                 got="the frames in BGR order" if bgr else "other frames",
                 hint="cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) after cap.read()")


BROKEN = ("empty.mp4", "truncated.mp4", "truncated_tail.mp4", "text.mp4", "zero_frames.mp4",
          "missing.mp4")


@check(points=5, kind="robustness", catches="a broken file (empty, truncated, text renamed to "
       ".mp4, zero frames, missing) returned as an empty or garbage result, a truncated file "
       "whose first frames decode not noticed (fewer decoded than reported), or an error that "
       "is not a ValueError naming the path", rules=("files.broken",))
def test_broken_files_raise(student, budget):
    """Each broken or missing file raises ValueError whose message names the file."""
    paths = remote_clips(student, _clip_seed(budget))
    analyzer = student.VideoAnalyzer()
    for name in BROKEN:
        with expect_raises("ValueError", what=f"extract_frames on {name}", mentions=name,
                           hint="check cap.isOpened() and that frames were decoded; put the "
                           "path in the message"):
            analyzer.extract_frames(paths[name], 4)


# -- hidden checks: the VLM request and its answer ----------------------------------------------
def _decode_jpeg_url(url: str) -> np.ndarray | None:
    """An RGB image from a data URL, or None; sizes are checked before decoding."""
    import cv2

    prefix = "data:image/jpeg;base64,"
    if not url.startswith(prefix) or len(url) > 4_000_000:
        return None
    try:
        raw = base64.b64decode(url[len(prefix):], validate=True)
    except ValueError:
        return None
    img = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or max(img.shape[:2]) > 4096:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def vlm_frames() -> np.ndarray:
    """3 colourful frames [3, 24, 40, 3] uint8: red/blue halves that JPEG keeps apart."""
    frames = np.zeros((3, 24, 40, 3), dtype=np.uint8)
    frames[:, :, :20] = (220, 30, 30)
    frames[:, :, 20:] = (30, 30, 220)
    for t in range(3):
        frames[t, 8 * t:8 * t + 8, :, 1] = 200
    return frames


def check_messages(messages: Any, frames: np.ndarray, actions: list[str], what: str) -> None:
    """The contract's OpenAI chat structure for ``frames`` and ``actions``."""
    if (not isinstance(messages, list) or len(messages) < 2
            or not all(isinstance(m, dict) for m in messages)):
        fail(f"{what} must be a list of message dicts.", expected="[system, user]",
             got=repr(messages)[:80])
    if messages[0].get("role") != "system" or messages[-1].get("role") != "user":
        fail(f"{what}: the roles are wrong.", expected="a system message first, the user "
             "message last", got=str([m.get("role") for m in messages]))
    content = messages[-1].get("content")
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        fail(f"{what}: the user content must be a list of parts.", expected="text and "
             "image_url parts", got=type(content).__name__)
    images = [k for k, p in enumerate(content) if p.get("type") == "image_url"]
    t = len(frames)
    if len(images) != t:
        fail(f"{what}: one image per frame.", expected=f"{t} image_url parts",
             got=f"{len(images)}")
    for n, k in enumerate(images, start=1):
        before = content[k - 1] if k > 0 else {}
        label = str(before.get("text", "")) if before.get("type") == "text" else ""
        if not re.search(rf"frame\s*{n}\s*/\s*{t}\b", label, flags=re.IGNORECASE):
            fail(f"{what}: image {n} is not preceded by its 'Frame {n}/{t}:' text part.",
                 expected=f"a text part 'Frame {n}/{t}:' just before it", got=repr(label)[:60])
        part = content[k].get("image_url")
        if not isinstance(part, dict) or part.get("detail") != "low":
            fail(f"{what}: image {n} must be {{'url': ..., 'detail': 'low'}}.",
                 expected="detail 'low'", got=repr(part)[:80])
        img = _decode_jpeg_url(str(part.get("url", "")))
        if img is None:
            fail(f"{what}: image {n} is not a base64 JPEG data URL.",
                 expected="data:image/jpeg;base64,...", got=str(part.get("url", ""))[:40])
        if max(img.shape[:2]) > 512:
            fail(f"{what}: image {n} is larger than 512 px.", expected="longest side <= 512",
                 got=str(img.shape[:2]))
        if img.shape == frames[n - 1].shape:
            err = frame_error(img[None], frames[n - 1][None])
            if err > 12.0:
                swapped = frame_error(img[None, ..., ::-1], frames[n - 1][None])
                fail(f"{what}: image {n} does not show frame {n}.", expected="the RGB frame, "
                     "JPEG-encoded", got=f"mean |difference| {err:.0f}" + (
                         " (red and blue swapped)" if swapped < err else ""),
                     hint="cv2.imencode expects BGR: encode frame[..., ::-1] (or convert)")
    tail = " ".join(str(p.get("text", "")) for p in content[images[-1] + 1:]
                    if p.get("type") == "text")
    missing = [a for a in actions if a not in tail]
    if missing or "json" not in tail.lower() or "action" not in tail:
        fail(f"{what}: the last text part must list the actions and ask for JSON.",
             expected='every allowed action and an instruction to answer JSON {"action": ...}',
             got=f"missing {missing}" if missing else repr(tail)[:120])


@check(points=5, kind="value", catches="a request not in the OpenAI chat format (no system "
       "message, images not as data URLs with detail 'low', frames unlabelled), the actions "
       "or the JSON instruction missing, or JPEGs encoded from RGB as if BGR; frames over 512 px",
       rules=("vlm.messages", "vlm.frames", "vlm.tail", "vlm.jpeg-colours", "vlm.resize"))
def test_build_vlm_messages(student):
    """build_vlm_messages: system + user message; "Frame k/T:" before each JPEG data URL with
    detail low, the frames' colours kept, large frames resized, then the actions and the JSON
    instruction."""
    analyzer = student.VideoAnalyzer()
    frames = vlm_frames()
    actions = ["wave", "jump", "sit_down"]
    check_messages(analyzer.build_vlm_messages(frames, actions), frames, actions,
                   "build_vlm_messages(3 frames)")
    big = np.full((2, 300, 700, 3), 90, dtype=np.uint8)
    messages = analyzer.build_vlm_messages(big, ACTIONS)
    check_messages(messages, big, ACTIONS, "build_vlm_messages(2 frames of 300x700)")


PARSE_TEXTS = [  # answers the reference reads (the first six) or refuses (the rest)
    '{"action": "move_left"}',
    '```json\n{"action": "Move Up"}\n```',
    '```\n{"action":"SHRINK"}\n```',
    "The shape keeps getting bigger, so: grow.",
    "Answer: MOVE-RIGHT",
    "It is static",
    "move left or move right, hard to say",
    "growth",
    "no idea",
    '{"action": "jump"}',
    "rotate, or maybe it is static",
    "",
]


@check(points=4, kind="value", catches="a parser that accepts ambiguous text (two actions, a "
       "substring such as 'growth', an action not allowed), or misses fenced JSON, case or "
       "hyphens", rules=("parse.json", "parse.plain", "parse.refuse"))
def test_parse_action_response_hidden(student, reference):
    """parse_action_response agrees with the reference on JSON, fenced JSON, plain text and
    ambiguous answers (ValueError)."""
    analyzer = student.VideoAnalyzer()
    ref = reference.VideoAnalyzer()
    for text in PARSE_TEXTS:
        try:
            want = ref.parse_action_response(text, ACTIONS)
        except ValueError:
            want = None
        if want is None:
            with expect_raises("ValueError", what="parse_action_response on an ambiguous or "
                               "unknown answer", hint="exactly one allowed action, whole "
                               "words; otherwise raise ValueError"):
                analyzer.parse_action_response(text, ACTIONS)
            continue
        got = analyzer.parse_action_response(text, ACTIONS)
        if got != want:
            fail("parse_action_response read an answer wrongly.", expected=repr(want),
                 got=repr(got), hint="JSON (maybe fenced) or plain text; case ignored; "
                 "spaces, underscores and hyphens equivalent")


@st.composite
def _spelling(draw):
    action = draw(st.sampled_from(ACTIONS))
    seps = draw(st.lists(st.sampled_from([" ", "_", "-", "  ", " - "]), min_size=1,
                         max_size=1))
    case = draw(st.sampled_from([str.lower, str.upper, str.title]))
    spelled = case(action.replace("_", seps[0]))
    form = draw(st.sampled_from(["json", "fenced", "plain"]))
    return action, spelled, form


@check(points=3, kind="invariant", catches="parsing that depends on case or on spaces, "
       "underscores and hyphens", rules=("parse.spelling",))
@given(args=_spelling())
@example(args=("move_down", "MOVE - DOWN", "plain"))
def test_parse_invariant_to_case_and_spacing(student, args):
    """Any spelling of an allowed action (case; spaces, underscores, hyphens) parses to it, in
    JSON, in fenced JSON and in plain text."""
    action, spelled, form = args
    text = {"json": f'{{"action": "{spelled}"}}',
            "fenced": f'```json\n{{"action": "{spelled}"}}\n```',
            "plain": f"I think the answer is {spelled}."}[form]
    got = student.VideoAnalyzer().parse_action_response(text, ACTIONS)
    if got != action:
        fail(f"parse_action_response misreads a {form} answer that spells an action in another "
             "case or with other separators.", expected="the allowed action it names",
             got=repr(got), hint="normalise case and spaces/underscores/hyphens on both sides")


@check(points=4, kind="value", catches="recognize_action not calling "
       "client.chat.completions.create(model=..., messages=..., max_tokens=...), ignoring "
       "the model name, not parsing the answer, or scores other than 1.0 for the answer",
       rules=("recognize.vlm", "recognize.none"))
def test_recognize_action_with_vlm(student, budget):
    """recognize_action with the OpenAI-style client double: one request with the analyzer's
    model, max_tokens and num_frames images; the label its canned (fenced JSON) answer names,
    scored 1.0; with neither client nor classifier, RuntimeError."""
    paths = remote_clips(student, _clip_seed(budget))
    fake = student.construct(FAKE, ['```json\n{"action": "Move Up"}\n```'])
    analyzer = student.VideoAnalyzer(client=fake, model="fake-vlm-1")
    pred = analyzer.recognize_action(paths["action_1.mp4"], ACTIONS, num_frames=4)
    label, scores = getattr(pred, "label", None), getattr(pred, "scores", None)
    if label != "move_up" or not isinstance(scores, dict) or scores.get("move_up") != 1.0:
        fail("recognize_action did not return the VLM's answer.", expected="ActionPrediction("
             "label='move_up', scores with 'move_up': 1.0)", got=repr(pred)[:120],
             hint="parse_action_response(response.choices[0].message.content, actions)")
    if any(float(v) != 0.0 for k, v in scores.items() if k != "move_up"):
        fail("recognize_action scored other actions for a VLM answer.",
             expected="1.0 for the answer only", got=repr(scores)[:120])
    requests = fake.recorded()
    if len(requests) != 1:
        fail("recognize_action must call the client once.", expected="1 request",
             got=f"{len(requests)}")
    req = requests[0]
    if req.get("model") != "fake-vlm-1" or "max_tokens" not in req:
        fail("recognize_action's request lacks the analyzer's model or max_tokens.",
             expected="model='fake-vlm-1', max_tokens=...",
             got=f"model={req.get('model')!r}, keys {sorted(req)}")
    msgs = req.get("messages")
    content = msgs[-1].get("content") if isinstance(msgs, list) and msgs and isinstance(
        msgs[-1], dict) else None
    n_images = sum(1 for p in content or [] if isinstance(p, dict)
                   and p.get("type") == "image_url")
    if n_images != 4:
        fail("recognize_action sent the wrong number of frames.", expected="4 images",
             got=f"{n_images}")
    with expect_raises("RuntimeError", what="recognize_action with neither client nor "
                       "classifier"):
        student.VideoAnalyzer().recognize_action(paths["action_1.mp4"], ACTIONS)


@check(points=5, kind="value", catches="the classifier fed frames in the wrong layout "
       "(not [1, T, 3, H, W]), unscaled (0..255), in BGR, or scores that are not the softmax "
       "over actions", rules=("recognize.classifier",))
def test_recognize_action_with_classifier(student, budget):
    """recognize_action with a fixed course classifier (a linear probe built in the worker)
    gives the softmax the same probe gives here on this process's decoding of the file."""
    seed = _clip_seed(budget)
    paths = remote_clips(student, seed)
    local = video.LinearProbeClassifier(len(ACTIONS), 8, seed=3)
    probe = student.construct(PROBE, len(ACTIONS), 8, seed=3)
    analyzer = student.VideoAnalyzer(classifier=probe)
    for name in ("action_2.mp4", "cuts_0.mp4"):
        decoded = local_clips(seed)[name]["decoded"]
        idx = [((2 * i + 1) * len(decoded)) // 16 for i in range(8)]
        clip = torch.from_numpy(decoded[idx]).permute(0, 3, 1, 2).float().div(255)[None]
        with torch.no_grad():
            want = torch.softmax(local(clip)[0].double(), 0)
        pred = analyzer.recognize_action(paths[name], ACTIONS, num_frames=8)
        scores = getattr(pred, "scores", None)
        if not isinstance(scores, dict) or sorted(scores) != sorted(ACTIONS):
            fail("recognize_action must score every allowed action.",
                 expected=f"scores for {ACTIONS}", got=repr(scores)[:120])
        got = torch.tensor([float(scores[a]) for a in ACTIONS], dtype=torch.float64)
        if not torch.allclose(got, want, atol=0.02):
            fail("recognize_action's classifier scores are wrong.",
                 expected="the softmax of the classifier's logits on [1, 8, 3, H, W] RGB "
                 "frames in [0, 1]", got=f"off by up to {float((got - want).abs().max()):.3f}",
                 hint="torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, then "
                 "unsqueeze(0)")
        if getattr(pred, "label", None) != ACTIONS[int(want.argmax())]:
            fail("recognize_action's label is not the best-scored action.",
                 expected=ACTIONS[int(want.argmax())], got=repr(getattr(pred, "label", None)))


@check(points=2, kind="shape", catches="a classifier whose logits are not [B, A], or that "
       "hard-codes 8 frames or 32x32 images", rules=("classifier.shapes",))
def test_classifier_shapes(student):
    """TemporalActionClassifier(5, num_frames=4) maps [2, 4, 3, 32, 32] to [2, 5], and (8
    actions, 8 frames) maps [3, 8, 3, 48, 40] to [3, 8]."""
    for (a, t), shape in (((5, 4), (2, 4, 3, 32, 32)), ((8, 8), (3, 8, 3, 48, 40))):
        model = student.TemporalActionClassifier(a, num_frames=t)
        got = student.call(model, torch.rand(*shape, generator=torch.Generator().manual_seed(1)),
                           _no_grad=True)
        expect_shape(got, (shape[0], a), what=f"TemporalActionClassifier({a}, num_frames={t})"
                     f" on {list(shape)}")


# -- training -----------------------------------------------------------------------------------
TRAINING_CATCHES = ("a classifier that loses the order of frames (averaging or pooling them "
                    "before comparing), so cannot tell left from right or grow from shrink; or "
                    "a training loop that does not learn (no optimizer step, labels ignored)")


def train_and_score(student, budget: dict, device: str = "cpu") -> dict[str, Any]:
    """Train the student's classifier on fresh clips; its accuracy on held-out clips."""
    seed = int(budget["seed"])
    frames, size = int(budget["frames"]), int(budget["size"])
    # fails fast (before rendering ~800 clips) where the classifier is not written yet
    student.TemporalActionClassifier(len(ACTIONS), num_frames=frames)
    x, y = video.clip_tensors(seed, int(budget["n_train"]), frames, size, size)
    x_test, y_test = video.clip_tensors(seed + 1, int(budget["n_test"]), frames, size, size)
    student.reseed(seed)
    model = student.train_action_classifier(x.to(device), y.to(device),
                                            epochs=int(budget["epochs"]),
                                            lr=float(budget["lr"]),
                                            generator=torch.Generator().manual_seed(seed))
    kind = getattr(model, "type_name", None) or type(model).__name__  # a handle, or local
    if kind != "TemporalActionClassifier":
        fail("train_action_classifier must return the trained TemporalActionClassifier.",
             expected="a TemporalActionClassifier", got=kind)
    model.eval()
    logits = [student.call(model, chunk.to(device), _no_grad=True)
              for chunk in x_test.split(100)]
    for chunk, out in zip(x_test.split(100), logits, strict=True):
        expect_shape(out, (len(chunk), len(ACTIONS)), what="the trained classifier's logits")
    pred = torch.cat([out.cpu() for out in logits]).argmax(dim=1)
    confusion = torch.zeros(len(ACTIONS), len(ACTIONS), dtype=torch.int64)
    for a, b in zip(y_test.tolist(), pred.tolist(), strict=True):
        confusion[a, b] += 1
    return {"accuracy": float((pred == y_test).double().mean()), "confusion": confusion}


def judge(scores: dict, budget: dict) -> None:
    need = float(budget["min_accuracy"])
    measured("held-out accuracy", scores["accuracy"], need, better="higher",
             data=f"generated clips, {int(budget['frames'])} frames of "
             f"{int(budget['size'])}x{int(budget['size'])}", chance=round(1 / len(ACTIONS), 4))
    if scores["accuracy"] < need:
        confusion = scores["confusion"]
        worst = [ACTIONS[i] for i in confusion.diag().argsort()[:3].tolist()]
        fail("the classifier trained by your train_action_classifier does not recognise the "
             "actions of fresh clips.", expected=f"held-out accuracy >= {need:.0%}",
             got=f"{scores['accuracy']:.1%} (worst classes: {', '.join(worst)})",
             hint="only motion tells the classes apart: the model must compare frames in "
             "order (stack them as channels, use frame differences, or a temporal "
             "convolution); averaging frames first loses the direction of motion")


@check(points=15, kind="training", timeout=300, profiles=("cpu",), catches=TRAINING_CATCHES,
       rules=("train.accuracy",))
def test_training_cpu(student, budget):
    """TemporalActionClassifier trained by train_action_classifier on freshly rendered
    8-frame 32x32 clips reaches the rubric's held-out accuracy on other fresh clips."""
    judge(train_and_score(student, budget), budget)


@check(points=15, kind="training", timeout=1800, profiles=("gpu",), catches=TRAINING_CATCHES,
       rules=("train.accuracy",))
def test_training_gpu(student, budget, device):
    """The same with longer, larger clips (16 frames, 48x48) on CUDA and a higher bar."""
    judge(train_and_score(student, budget, device), budget)
