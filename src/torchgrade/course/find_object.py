"""A synthetic "find the object" image set: the class is a small pattern in one patch.

Why it exists: the `vit_attention` training check asks a small Vision Transformer both to
classify and to attend to the right place, so it needs images where the evidence for the label
sits in exactly one, known patch. Each image is noise on a random background colour; one
patch of the ``patch_size`` grid (chosen at random) holds the object: a ``patch_size`` x
``patch_size`` pattern (horizontal stripes, vertical stripes, a checkerboard, a diagonal) in a
random foreground colour. Every pattern covers half of its patch, so the amount or the colour
of the ink says nothing about the class: only the pattern does, and only the object's patch
shows it.

The module imports only torch (it runs in the sandboxed student worker too); all randomness
comes from a local ``torch.Generator`` seeded by the caller, so the same seed gives
bit-identical images on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PATTERNS = ("horizontal", "vertical", "checker", "diagonal")


def _pattern(name: str, p: int) -> Tensor:
    """A ``[p, p]`` 0/1 mask covering half of the patch."""
    r = torch.arange(p)[:, None].expand(p, p)
    c = torch.arange(p)[None, :].expand(p, p)
    if name == "horizontal":
        on = r % 2 == 0
    elif name == "vertical":
        on = c % 2 == 0
    elif name == "checker":
        on = (r + c) % 2 == 0
    else:  # two-pixel-wide diagonal bands
        on = ((r + c) // 2) % 2 == 0
    return on.float()


@dataclass(frozen=True)
class FindObject:
    """``images`` [n, 3, S, S] in [0, 1]; ``labels`` [n] (index into PATTERNS[:n_classes]);
    ``positions`` [n]: the object's patch, row-major on the (S/p) x (S/p) grid."""

    images: Tensor
    labels: Tensor
    positions: Tensor


def make_find_object(n: int, *, img_size: int = 16, patch_size: int = 4, n_classes: int = 4,
                     noise: float = 0.15, seed: int = 0) -> FindObject:
    """``n`` images with one patterned object each; see the module docstring."""
    if n < 1 or img_size % patch_size or not 2 <= n_classes <= len(PATTERNS):
        raise ValueError("need n >= 1, patch_size dividing img_size, 2 <= n_classes <= "
                         f"{len(PATTERNS)}")
    g = torch.Generator().manual_seed(seed)
    grid = img_size // patch_size
    labels = torch.randint(0, n_classes, (n,), generator=g)
    positions = torch.randint(0, grid * grid, (n,), generator=g)
    bg = 0.2 + 0.6 * torch.rand(n, 3, 1, 1, generator=g)
    # A foreground colour clearly away from the background (either polarity).
    shift = (0.35 + 0.25 * torch.rand(n, 3, 1, 1, generator=g))
    sign = torch.where(bg > 0.5, -1.0, 1.0)
    fg = (bg + sign * shift).clamp(0.0, 1.0)
    images = bg + noise * torch.randn(n, 3, img_size, img_size, generator=g)
    masks = torch.stack([_pattern(name, patch_size) for name in PATTERNS[:n_classes]])
    for i in range(n):
        r = int(positions[i]) // grid * patch_size
        c = int(positions[i]) % grid * patch_size
        m = masks[labels[i]]  # [p, p]
        patch = images[i, :, r:r + patch_size, c:c + patch_size]
        images[i, :, r:r + patch_size, c:c + patch_size] = patch * (1 - m) + fg[i] * m
    return FindObject(images.clamp(0.0, 1.0), labels, positions)
