"""Synthetic labelled action clips, written as real video files, for the video_action grader.

Why it exists: the video_action grader needs clips whose class only motion tells (a single
frame says nothing about it), reproducible from a seed the grader picks at grading time, and
the same clips in the trusted grader (to know the truth) and in the sandboxed worker (which
cannot see the grader's files). Both sides call the functions below with the same seed and get
the same pixels: rendering is numpy only, seeded by ``numpy.random.default_rng``.

Classes (``ACTIONS``): a shape moves left, right, up or down, grows, shrinks, rotates, or stays
put. Shape (a bar, a triangle, an ellipse or an L), colours, size, speed, position and the
background (a colour gradient with a fixed texture) are drawn at random for every clip.

``ClipSet`` writes clips to ``.mp4`` files (OpenCV, ``mp4v``) in a fresh temporary folder
together with the broken files a robust reader must refuse (empty; cut in half; cut in half
with the index kept, so the container reports frames that do not decode; text; zero frames),
and exposes paths, labels and cut frames as plain data (``ClipSet.manifest()``).
``clip_tensors`` makes the classifier's training and test tensors ``[N, T, 3, H, W]`` float in
[0, 1].

cv2 is imported lazily (writing files); rendering needs only numpy and torch.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

ACTIONS = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink", "rotate",
           "static")
SHAPES = ("bar", "triangle", "ellipse", "ell")
SUPERSAMPLE = 3  # sub-pixel rendering: a shape moving 0.7 px per frame changes its pixels


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A colour gradient plus a fixed texture: [H, W, 3] float in [0, 255]."""
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1.0) / 2.0
    bg = (1 - t)[..., None] * a + t[..., None] * b
    bg = 0.6 * bg + 0.4 * 127.0  # keep the shape distinguishable from the background
    bg += rng.normal(0, 6.0, size=(height, width, 3))
    return np.clip(bg, 0, 255)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether local coordinates (u along the long axis, both in units of the size) are in."""
    if shape == "bar":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.4)
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.45) ** 2 <= 1.0
    if shape == "triangle":  # apex at u = +1, base at u = -0.8
        w = 0.75 * (1.0 - u) / 1.8
        return (u >= -0.8) & (u <= 1.0) & (np.abs(v) <= w)
    # "ell": an L made of two bars
    return (((u >= -1.0) & (u <= 1.0) & (v >= -0.7) & (v <= -0.25))
            | ((u >= -1.0) & (u <= -0.55) & (v >= -0.7) & (v <= 0.9)))


def _trajectory(action: str, rng: np.random.Generator, frames: int, height: int,
                width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-frame centre (x, y), size and angle of the shape, and its base size."""
    side = min(height, width)
    size = rng.uniform(0.17, 0.24) * side  # half the long axis, in pixels
    angle0 = rng.uniform(0, 2 * math.pi)
    s = np.linspace(0.0, 1.0, frames)  # clip time, 0 -> 1
    sizes = np.full(frames, size)
    angles = np.full(frames, angle0)
    travel = rng.uniform(0.3, 0.45) * side  # total displacement over the clip
    dx = dy = 0.0
    if action == "move_left":
        dx = -travel
    elif action == "move_right":
        dx = travel
    elif action == "move_up":
        dy = -travel
    elif action == "move_down":
        dy = travel
    elif action in ("grow", "shrink"):
        ratio = rng.uniform(2.2, 2.8)
        small = size / math.sqrt(ratio)
        grow = small * ratio ** s
        sizes = grow if action == "grow" else grow[::-1].copy()
    elif action == "rotate":
        turn = rng.uniform(0.55, 0.85) * math.pi * rng.choice([-1.0, 1.0])
        angles = angle0 + turn * s
    elif action != "static":
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    margin = 0.6 * float(sizes.max()) + 1.0  # the shape may touch the border, not leave
    # the clip's mid-point position is uniform over what keeps the shape (mostly) in frame
    cx = rng.uniform(*_span(margin + abs(dx) / 2, width))
    cy = rng.uniform(*_span(margin + abs(dy) / 2, height))
    xs = cx + dx * (s - 0.5)
    ys = cy + dy * (s - 0.5)
    return xs, ys, sizes, angles, size


def _span(margin: float, extent: int) -> tuple[float, float]:
    lo, hi = margin, extent - margin
    return (lo, hi) if lo <= hi else (extent / 2, extent / 2)


def render_clip(action: str, seed: int, frames: int = 16, height: int = 32,
                width: int = 32) -> np.ndarray:
    """One clip of ``action`` drawn from ``seed``: [T, H, W, 3] uint8, RGB."""
    rng = np.random.default_rng(seed)
    bg = _background(rng, height, width)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _colour(rng)
    while np.abs(colour - bg.mean(axis=(0, 1))).sum() < 150:  # visible on its background
        colour = _colour(rng)
    xs, ys, sizes, angles, _ = _trajectory(action, rng, frames, height, width)
    k = SUPERSAMPLE
    yy, xx = np.mgrid[0:height * k, 0:width * k].astype(np.float64)
    xx, yy = (xx + 0.5) / k, (yy + 0.5) / k
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        c, s_ = math.cos(angles[t]), math.sin(angles[t])
        px, py = xx - xs[t], yy - ys[t]
        u = (c * px + s_ * py) / sizes[t]
        v = (-s_ * px + c * py) / sizes[t]
        cover = _inside(shape, u, v).reshape(height, k, width, k).mean(axis=(1, 3))
        img = bg * (1 - cover[..., None]) + colour * cover[..., None]
        out[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def clip_seeds(seed: int, n: int) -> list[tuple[str, int]]:
    """``n`` (action, clip seed) pairs from ``seed``, the classes balanced and shuffled."""
    rng = np.random.default_rng(seed)
    labels = [ACTIONS[i % len(ACTIONS)] for i in range(n)]
    order = rng.permutation(n)
    seeds = rng.integers(0, 2**31 - 1, size=n)
    return [(labels[int(j)], int(seeds[i])) for i, j in enumerate(order)]


def clip_tensors(seed: int, n: int, frames: int = 8, height: int = 32,
                 width: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` balanced clips ``[N, T, 3, H, W]`` float32 in [0, 1] and labels ``[N]`` int64
    (indices into ``ACTIONS``)."""
    pairs = clip_seeds(seed, n)
    clips = np.stack([render_clip(a, s, frames, height, width) for a, s in pairs])
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float().div_(255.0)  # [N, T, 3, H, W]
    y = torch.tensor([ACTIONS.index(a) for a, _ in pairs], dtype=torch.int64)
    return x.contiguous(), y


def cut_clip(seed: int, frames: int = 24, cuts: tuple[int, ...] = (9, 17), height: int = 32,
             width: int = 32) -> np.ndarray:
    """A clip with hard scene cuts: scene k (a different clip: new background, new shape) runs
    from ``cuts[k-1]`` to ``cuts[k]``; [T, H, W, 3] uint8 RGB. Every cut frame differs from its
    predecessor much more than any frame inside a scene."""
    bounds = [0, *cuts, frames]
    parts = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        action = ACTIONS[(seed + k) % len(ACTIONS)]
        parts.append(render_clip(action, seed * 31 + k, b - a, height, width))
    return np.concatenate(parts)


def colour_clip(frames: int = 12, height: int = 32, width: int = 48) -> np.ndarray:
    """Left half pure red, right half pure blue, a green bar sweeping down: RGB uint8. Read as
    BGR, red and blue swap places."""
    out = np.zeros((frames, height, width, 3), dtype=np.uint8)
    out[:, :, : width // 2] = (230, 20, 20)
    out[:, :, width // 2:] = (20, 20, 230)
    for t in range(frames):
        y = (t * (height - 4)) // max(frames - 1, 1)
        out[t, y:y + 4, :, :] = (20, 220, 20)
    return out


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0) -> None:
    """Write RGB frames [T, H, W, 3] uint8 to ``path`` with OpenCV's ``mp4v`` (T may be 0)."""
    import cv2

    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (int(width), int(height)))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with mp4v")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV writes BGR
    finally:
        writer.release()


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video file, decoded in order: [T, H, W, 3] uint8 RGB (T may be 0)."""
    import cv2

    cap = cv2.VideoCapture(os.fspath(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)


def clip_plan(seed: int, n_action: int = 8, frames: int = 16, size: int = 32) -> list[dict]:
    """What ``ClipSet(seed, ...)`` writes, as plain records (no pixels): name, kind, and the
    label, cut frames and frame count where they apply."""
    plan: list[dict[str, Any]] = []
    for i, (action, s) in enumerate(clip_seeds(seed, n_action)):
        plan.append({"name": f"action_{i}.mp4", "kind": "action", "label": action, "seed": s,
                     "frames": frames, "size": size})
    rng = np.random.default_rng(seed + 1)
    for i in range(2):
        total = int(rng.integers(20, 29))
        first = int(rng.integers(4, total // 2 - 1))
        second = int(rng.integers(first + 4, total - 3))
        plan.append({"name": f"cuts_{i}.mp4", "kind": "cuts", "seed": int(rng.integers(1000)),
                     "frames": total, "cuts": [first, second], "size": size})
    plan.append({"name": "short.mp4", "kind": "action", "label": "move_right",
                 "seed": int(rng.integers(1000)), "frames": 5, "size": size})
    plan.append({"name": "colour.mp4", "kind": "colour", "frames": 12})
    for name in ("empty.mp4", "truncated.mp4", "truncated_tail.mp4", "text.mp4",
                 "zero_frames.mp4"):
        plan.append({"name": name, "kind": "broken"})
    plan.append({"name": "missing.mp4", "kind": "missing"})
    # One frame: no keyframe (frame 0 has no predecessor). Last, so that the items above keep
    # their random draws.
    plan.append({"name": "single.mp4", "kind": "single", "label": "static",
                 "seed": int(rng.integers(1000)), "frames": 1, "size": size})
    return plan


def plan_frames(item: dict) -> np.ndarray | None:
    """The RGB frames of one playable plan item (before encoding), else None."""
    size = int(item.get("size", 32))
    if item["kind"] in ("action", "single"):
        return render_clip(item["label"], item["seed"], item["frames"], size, size)
    if item["kind"] == "cuts":
        return cut_clip(item["seed"], item["frames"], tuple(item["cuts"]), size, size)
    if item["kind"] == "colour":
        return colour_clip(item["frames"])
    return None


def _atoms(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level MP4 boxes of ``data``: (type, offset, size)."""
    out, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size < 8:
            break
        out.append((kind, i, size))
        i += size
    return out


def faststart(data: bytes, keep: float = 1.0) -> bytes:
    """An MP4 written by ``write_video`` with its index (``moov``) moved before the frames
    (``mdat``), the chunk offsets shifted to match, and only the first ``keep`` of the frame
    data kept: with ``keep < 1`` the container still reports every frame but fewer decode (a
    download cut short)."""
    boxes = {kind: (at, size) for kind, at, size in _atoms(data)}
    if b"moov" not in boxes or b"mdat" not in boxes or boxes[b"moov"][0] < boxes[b"mdat"][0]:
        raise ValueError("expected an MP4 with its moov box after its mdat box")
    (moov_at, moov_size), (mdat_at, mdat_size) = boxes[b"moov"], boxes[b"mdat"]
    moov = bytearray(data[moov_at:moov_at + moov_size])
    j = moov.find(b"stco")
    while j != -1:  # every 32-bit chunk offset moves by the size of the moov box
        count = struct.unpack(">I", moov[j + 8:j + 12])[0]
        for n in range(count):
            p = j + 12 + 4 * n
            moov[p:p + 4] = struct.pack(">I", struct.unpack(">I", moov[p:p + 4])[0] + moov_size)
        j = moov.find(b"stco", j + 4)
    head, body = data[:mdat_at], data[mdat_at:mdat_at + mdat_size]
    return head + bytes(moov) + body[: max(8, int(len(body) * keep))]


def write_plan(folder: Path, plan: list[dict]) -> dict[str, str]:
    """Write every file of ``plan`` into ``folder``; return {name: path}."""
    paths: dict[str, str] = {}
    for item in plan:
        path = folder / item["name"]
        paths[item["name"]] = str(path)
        frames = plan_frames(item)
        if frames is not None:
            write_video(path, frames)
        elif item["name"] == "empty.mp4":
            path.write_bytes(b"")
        elif item["name"] == "text.mp4":
            path.write_text("this is not a video, only text renamed to .mp4\n" * 20)
        elif item["name"] == "zero_frames.mp4":
            write_video(path, np.zeros((0, 32, 32, 3), dtype=np.uint8))
        elif item["name"] in ("truncated.mp4", "truncated_tail.mp4"):
            whole = folder / f"_whole_{item['name']}"
            write_video(whole, render_clip("grow", 5, 16))
            data = whole.read_bytes()
            whole.unlink()
            if item["name"] == "truncated.mp4":  # the index (moov, at the end) is cut off
                path.write_bytes(data[: len(data) // 2])
            else:  # the index survives: 16 frames reported, fewer decode
                path.write_bytes(faststart(data, keep=0.5))
    return paths


class ClipSet:
    """The clips of one grading run, written as video files into a fresh temporary folder.

    Built in the sandboxed worker with ``student.construct("torchgrade.course.video:ClipSet",
    seed)``; the grader calls ``manifest()`` (plain data) and builds the same clips itself with
    ``clip_plan`` / ``plan_frames`` / ``write_plan`` to know their pixels and labels.
    """

    _written: dict[tuple[int, ...], tuple[Path, dict[str, str]]] = {}  # per process

    def __init__(self, seed: int, n_action: int = 8, frames: int = 16, size: int = 32) -> None:
        key = (int(seed), int(n_action), int(frames), int(size))
        self.plan = clip_plan(*key)
        cached = ClipSet._written.get(key)
        if cached is not None and all(Path(p).exists() or name == "missing.mp4"
                                      for name, p in cached[1].items()):
            # the checks of one worker share one copy (rendering and encoding cost ~0.2 s)
            self.folder, self.paths = cached
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="clips-"))
            self.paths = write_plan(self.folder, self.plan)
            ClipSet._written[key] = (self.folder, self.paths)

    def manifest(self) -> dict[str, dict]:
        """{name: {"path": str, "kind": ..., "label"/"cuts"/"frames" where they apply}}."""
        return {item["name"]: {**item, "path": self.paths[item["name"]]} for item in self.plan}


class LinearProbeClassifier(torch.nn.Module):
    """A fixed, seeded classifier of clips [B, T, 3, H, W] in [0, 1] -> logits [B, A].

    It average-pools each frame to 4x4 and applies a random linear map to every (frame,
    channel, cell): its logits change when frames come in another order, in BGR, unscaled
    (0..255) or in another layout, so ``recognize_action``'s classifier path can be checked
    exactly against the same probe run on the grader's own decoding.
    """

    def __init__(self, num_actions: int, num_frames: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.num_frames = int(num_frames)
        self.linear = torch.nn.Linear(self.num_frames * 3 * 16, int(num_actions))
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(self.linear.weight.shape, generator=g) * 0.8)
            self.linear.bias.copy_(torch.randn(self.linear.bias.shape, generator=g) * 0.1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() != 5 or clips.shape[1] != self.num_frames or clips.shape[2] != 3:
            raise ValueError(f"clips must be [B, {self.num_frames}, 3, H, W], got "
                             f"{list(clips.shape)}")
        b, t, c, h, w = clips.shape
        pooled = torch.nn.functional.adaptive_avg_pool2d(clips.reshape(b * t, c, h, w), 4)
        # centred so that the logits depend on the colours, not on a shared offset
        return self.linear((pooled.reshape(b, -1) - 0.5) * 4.0)
