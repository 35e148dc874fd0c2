"""A synthetic image set whose class is a shape and nothing else.

Why it exists: the training checks (SimCLR's linear probe first of all) need an image set that
is generated offline, in well under a second, identically on every machine, and on which the
label cannot be read from colour, size or position. Each image shows one shape (circle,
square, triangle, ...) at a random position, scale and rotation, in a random foreground colour
on a random background colour, with mild pixel noise. A linear probe on raw pixels therefore
does poorly, and a representation that captures shape does well.

Only torch is used (the module is imported inside the sandboxed student worker too), and all
randomness comes from a local ``torch.Generator`` seeded by the caller: the global RNG is
never touched, and the same seed gives bit-identical images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

_SQRT3_2 = math.sqrt(3.0) / 2.0


# Each shape is a signed distance-like function of local coordinates (x, y) measured in units
# of the shape's radius: negative inside, positive outside, changing by ~1 per radius across
# the edge (exact for the round shapes, a close bound for the polygons). The constants give
# the shapes comparable areas (2.2-2.6 squared radii), so that ink does not give the class away.
def _circle(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y) - 0.9


def _square(x: Tensor, y: Tensor) -> Tensor:
    return torch.maximum(x.abs(), y.abs()) - 0.8


def _triangle(x: Tensor, y: Tensor) -> Tensor:
    # Equilateral: three half-planes whose outward normals are 120 degrees apart; inradius
    # 0.62, so its corners reach 1.24 radii from the centre.
    bottom = -y
    right = _SQRT3_2 * x + 0.5 * y
    left = -_SQRT3_2 * x + 0.5 * y
    return torch.maximum(torch.maximum(bottom, right), left) - 0.62


def _cross(x: Tensor, y: Tensor) -> Tensor:
    ax, ay = x.abs(), y.abs()
    horizontal = torch.maximum(ax - 1.0, ay - 0.33)
    vertical = torch.maximum(ax - 0.33, ay - 1.0)
    return torch.minimum(horizontal, vertical)


def _ring(x: Tensor, y: Tensor) -> Tensor:
    r = torch.sqrt(x * x + y * y)
    return torch.maximum(r - 1.0, 0.55 - r)


SHAPES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
}
"""Every shape :func:`make_shapes` can draw, by name."""

DEFAULT_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
"""The classes :func:`make_shapes` draws unless told otherwise (label ``k`` is ``classes[k]``)."""

_EXTENT = 1.25  # the farthest any shape reaches from its centre, in radii (triangle corners)


def make_shapes(
    n: int,
    *,
    size: int = 32,
    seed: int,
    classes: Sequence[str] = DEFAULT_CLASSES,
    min_radius: float = 0.22,
    max_radius: float = 0.38,
    rotate: bool = False,
    tint: float = 0.3,
    noise: float = 0.03,
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` shape images and their labels, deterministically from ``seed``.

    Per image: a shape of a random radius (``min_radius``-``max_radius`` of ``size``) at a
    random position (always wholly inside), optionally at a random rotation, in a random
    foreground colour on a random background colour, plus Gaussian pixel noise. Colours are a
    random luminance plus a random tint of up to ``tint`` per channel; the foreground differs
    from the background by 0.3-0.8 in luminance, brighter or darker at random, so the shape is
    always visible but its colours carry no information about its class.

    Rotation is off by default: the training checks have a couple of hundred optimiser steps,
    and a rotated square is hard to tell from a circle at 20 pixels.

    Args:
        n: number of images (``n >= 1``). Labels are balanced: each class appears
            ``n // len(classes)`` or one more times, in a shuffled order.
        size: image height and width in pixels (``size >= 8``).
        seed: seeds a local generator; the same seed gives the same images, bit for bit.
        classes: names from :data:`SHAPES`; label ``k`` means ``classes[k]``.
        min_radius, max_radius: range of the shape's radius as a fraction of ``size``.
        rotate: draw each shape at a uniformly random rotation.
        tint: how far each colour strays from gray (0 gives gray-level images).
        noise: standard deviation of the Gaussian pixel noise added before clamping.

    Returns:
        ``(images, labels)``: float32 ``[n, 3, size, size]`` in ``[0, 1]`` and int64 ``[n]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPES]
    if not classes or unknown:
        raise ValueError(f"classes must be a non-empty sequence of {sorted(SHAPES)}, got {classes}")
    if not 0.0 < min_radius <= max_radius <= 0.5 / _EXTENT:
        raise ValueError(f"need 0 < min_radius <= max_radius <= {0.5 / _EXTENT:.2f}")
    for name, value in (("tint", tint), ("noise", noise)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    g = torch.Generator().manual_seed(int(seed))
    labels = (torch.arange(n) % len(classes))[torch.randperm(n, generator=g)]

    # Every random quantity is drawn for every image, whatever its class and options, so that
    # an image does not change when the list of classes or `rotate` does.
    radius = size * (min_radius + (max_radius - min_radius) * torch.rand(n, generator=g))
    margin = _EXTENT * radius + 0.5  # keep the whole shape inside the image
    centre = margin[:, None] + (size - 2 * margin[:, None]) * torch.rand(n, 2, generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g) * float(rotate)
    background, foreground = _colours(n, tint, g)
    pixel_noise = noise * torch.randn(n, 3, size, size, generator=g)

    # Local coordinates of each pixel centre: rotate by -angle around the centre, in radii.
    coords = torch.arange(size, dtype=torch.float32) + 0.5  # [S]
    dx = coords[None, None, :] - centre[:, 0, None, None]  # [n, 1, S]
    dy = coords[None, :, None] - centre[:, 1, None, None]  # [n, S, 1]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]  # [n, 1, 1]
    r = radius[:, None, None]  # [n, 1, 1]
    x = (cos * dx + sin * dy) / r  # [n, S, S]
    y = (-sin * dx + cos * dy) / r  # [n, S, S]

    distance = torch.empty(n, size, size)
    for k, name in enumerate(classes):
        mine = labels == k
        distance[mine] = SHAPES[name](x[mine], y[mine])
    # Anti-aliased coverage: the signed distance in pixels, clipped to a one-pixel ramp.
    coverage = (0.5 - distance * r).clamp(0.0, 1.0)[:, None]  # [n, 1, S, S]

    bg = background[:, :, None, None]  # [n, 3, 1, 1]
    fg = foreground[:, :, None, None]  # [n, 3, 1, 1]
    images = (bg + (fg - bg) * coverage + pixel_noise).clamp(0.0, 1.0)
    return images.contiguous(), labels.to(torch.int64)


def _colours(n: int, tint: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random background and foreground colours ``[n, 3]`` with a visible luminance contrast."""
    lum_bg = torch.rand(n, generator=g)  # [n]
    contrast = 0.3 + 0.5 * torch.rand(n, generator=g)  # [n]
    brighter = torch.rand(n, generator=g) < 0.5  # [n]
    # Brighter or darker at random, but always the way that stays inside [0, 1] if only one does.
    fits_up = lum_bg + contrast <= 1.0
    fits_down = lum_bg - contrast >= 0.0
    up = torch.where(fits_up & fits_down, brighter, fits_up | ~fits_down)
    lum_fg = (lum_bg + torch.where(up, contrast, -contrast)).clamp(0.0, 1.0)  # [n]
    tint_bg = tint * (2 * torch.rand(n, 3, generator=g) - 1)  # [n, 3]
    tint_fg = tint * (2 * torch.rand(n, 3, generator=g) - 1)  # [n, 3]
    background = (lum_bg[:, None] + tint_bg).clamp(0.0, 1.0)
    foreground = (lum_fg[:, None] + tint_fg).clamp(0.0, 1.0)
    return background, foreground
