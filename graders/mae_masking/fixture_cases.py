"""Public fixture cases of the mae_masking grader, computed from the reference.

`torchgrade author fixtures mae_masking` runs `build` against the hidden reference and stores
the result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. The masking case stores the generator's seed: the public check seeds a
``torch.Generator`` with it and the student's draw must reproduce the reference's.
"""

from __future__ import annotations

from typing import Any

import torch

MASKING_SEED = 20261204


def build(reference: Any) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(20261203)
    # Non-square RGB images: 8x12 pixels, 4x4 patches, a 2x3 grid of 48-value patches.
    imgs = torch.rand(2, 3, 8, 12, generator=g)
    patches = torch.randn(2, 6, 48, generator=g)
    square = torch.randn(1, 9, 4, generator=g)  # a 3x3 grid of 2x2 one-channel patches
    cases: dict[str, dict[str, Any]] = {
        "patchify": {"imgs": imgs, "patch_size": 4,
                     "expected": reference.patchify(imgs, 4)},
        "unpatchify": {"x": patches, "patch_size": 4, "channels": 3, "grid_size": [2, 3],
                       "expected": reference.unpatchify(patches, 4, 3, grid_size=(2, 3)),
                       "square": square,
                       "expected_square": reference.unpatchify(square, 2, 1)},
    }
    x = torch.randn(3, 10, 4, generator=g)
    x_masked, mask, ids_restore = reference.random_masking(
        x, 0.6, torch.Generator().manual_seed(MASKING_SEED))
    cases["masking"] = {"x": x, "mask_ratio": 0.6, "seed": MASKING_SEED,
                        "x_masked": x_masked, "mask": mask, "ids_restore": ids_restore}
    _, mask6, _ = reference.random_masking(torch.zeros(2, 6, 1), 0.5,
                                           torch.Generator().manual_seed(MASKING_SEED + 1))
    pred = torch.randn(2, 6, 48, generator=g)
    cases["loss"] = {
        "pred": pred, "imgs": imgs, "mask": mask6, "patch_size": 4,
        "expected_norm": reference.mae_loss(pred, imgs, mask6, 4, norm_pix_loss=True),
        "expected_raw": reference.mae_loss(pred, imgs, mask6, 4, norm_pix_loss=False),
    }
    return cases
