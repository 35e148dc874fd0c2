"""Synthetic captioned images for the clip_search assignment: shapes, colours, positions, counts.

Why it exists: no CLIP weights can be downloaded at grading time, so the project trains its own
small CLIP (:mod:`torchgrade.course.clip_train`) on images it can render anywhere, identically,
in milliseconds: one to three shapes of one kind and one colour, grouped in one part of a
64x64 canvas, with a caption that says all four facts ("two red circles on the left"). The
grader also writes folders of these images (with corrupt files, wrong extensions and
duplicates) inside the sandboxed worker, where the student's search engine indexes them.

All randomness comes from a ``random.Random`` seeded by the caller; the global RNGs are never
touched. Only PIL and torch are imported (the worker imports this module too).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor

IMAGE_SIZE = 64
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle")
# Where the group sits: the box (x0, y0, x1, y1) its shape centres are drawn from.
POSITIONS: dict[str, tuple[int, int, int, int]] = {
    "left": (9, 9, 23, 55),
    "right": (41, 9, 55, 55),
    "top": (9, 9, 55, 23),
    "bottom": (9, 41, 55, 55),
    "centre": (22, 22, 42, 42),
}
# How a position reads in a caption.
POSITION_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top",
                   "bottom": "at the bottom", "centre": "in the centre"}
COUNTS = ("one", "two", "three")
# Extra words the tokenizer knows, for prompt templates ("a photo of a red circle").
EXTRA_WORDS = ("a", "an", "photo", "of", "picture", "image", "shape", "shapes", "some")
# CLIP's normalisation constants, used by the shipped processor too.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Scene:
    """What one image shows: ``count`` shapes of one kind and colour at one position."""

    colour: str
    shape: str
    position: str
    count: int  # 1..3

    @property
    def caption(self) -> str:
        noun = self.shape if self.count == 1 else self.shape + "s"
        return f"{COUNTS[self.count - 1]} {self.colour} {noun} {POSITION_PHRASE[self.position]}"


def all_scenes() -> list[Scene]:
    """Every scene, in a fixed order (6 colours x 3 shapes x 5 positions x 3 counts = 270)."""
    return [Scene(c, s, p, n) for c, s, p, n in
            itertools.product(COLOURS, SHAPES, POSITIONS, range(1, len(COUNTS) + 1))]


def vocabulary() -> list[str]:
    """Every word a caption or prompt template of this image set uses, sorted."""
    words = set(EXTRA_WORDS) | set(COLOURS) | set(COUNTS)
    words |= set(SHAPES) | {s + "s" for s in SHAPES}
    for phrase in POSITION_PHRASE.values():
        words |= set(phrase.split())
    return sorted(words)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        h = r * 0.85
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r * 1.1), (cx - r * 1.05, cy + r * 0.8),
                      (cx + r * 1.05, cy + r * 0.8)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, rng: random.Random) -> Image.Image:
    """A 64x64 RGB image of ``scene``: shapes of radius 5-7 px that do not overlap, on a dark
    background of random shade, with mild colour jitter."""
    shade = rng.randint(0, 60)
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (shade, shade, shade))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = POSITIONS[scene.position]
    placed: list[tuple[float, float, float]] = []
    for _ in range(scene.count):
        for _attempt in range(200):
            r = rng.uniform(5.0, 7.0)
            cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if all((cx - px) ** 2 + (cy - py) ** 2 > (r + pr + 1.5) ** 2 for px, py, pr in placed):
                break
        placed.append((cx, cy, r))
        base = COLOURS[scene.colour]
        fill = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in base)
        _draw_shape(draw, scene.shape, cx, cy, r, fill)  # type: ignore[arg-type]
    return img


def sample_scenes(n: int, seed: int) -> list[Scene]:
    """``n`` scenes drawn uniformly (with replacement) by ``random.Random(seed)``."""
    rng = random.Random(seed)
    scenes = all_scenes()
    return [rng.choice(scenes) for _ in range(n)]


def render_many(scenes: list[Scene], seed: int) -> list[Image.Image]:
    """One image per scene, all drawn from one ``random.Random(seed)`` stream."""
    rng = random.Random(seed)
    return [render(s, rng) for s in scenes]


def to_pixels(images: list[Image.Image]) -> Tensor:
    """Images -> ``[B, 3, 64, 64]`` float32, scaled to [0, 1] and normalised with CLIP's mean
    and std: the same values the shipped ``CLIPImageProcessor`` gives for a 64x64 image."""
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2) / 255.0  # [B, 3, H, W]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def heldout_gallery(n: int = 100, seed: int = 12345) -> tuple[list[Scene], list[Image.Image]]:
    """``n`` distinct scenes (no two share a caption) and a fresh rendering of each: the
    retrieval benchmark (a query caption has exactly one right image; chance recall@k is k/n).
    Seeds of the training set never reach 12345."""
    rng = random.Random(seed)
    scenes = rng.sample(all_scenes(), n)
    return scenes, [render(s, rng) for s in scenes]


def write_image_folder(root: str | Path, n: int = 12, seed: int = 0) -> dict[str, str]:
    """Write ``n`` rendered scenes as PNG/JPEG files under ``root`` in nested folders, and
    return ``{relative path: caption}``. Used for the search-engine demo and benchmarks."""
    rng = random.Random(seed)
    root = Path(root)
    out: dict[str, str] = {}
    scenes = all_scenes()
    for i in range(n):
        scene = rng.choice(scenes)
        sub = root / scene.shape
        sub.mkdir(parents=True, exist_ok=True)
        ext = ".png" if i % 2 == 0 else ".jpg"
        rel = f"{scene.shape}/img_{i:04d}{ext}"
        image = render(scene, rng)
        image.save(root / rel, **({"quality": 95} if ext == ".jpg" else {}))
        out[rel] = scene.caption
    return out
