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
    ids = torch.rand(2, 5, generator=g).argsort(dim=1)
    shuffled = torch.randn(2, 5, 3, generator=g)
    cases["restore"] = {"x": shuffled, "ids_restore": ids,
                        "expected": reference.restore_order(shuffled, ids)}
    cases["forward"] = forward_case(reference, g)
    cases["training"] = training_case(reference, g)
    return cases


SMALL = {"embed_dim": 8, "depth": 1, "num_heads": 2, "decoder_dim": 8, "decoder_depth": 1}
TRAINING = {"steps": 3, "batch_size": 4, "lr": 0.1, "mask_ratio": 0.5, "norm_pix_loss": True}


def forward_case(reference: Any, g: torch.Generator) -> dict[str, Any]:
    """mae_forward of a small TinyMAE (its weights stored under ``state.<name>``)."""
    from torchgrade.course.mae import TinyMAE

    torch.manual_seed(MASKING_SEED + 2)
    model = TinyMAE(**SMALL).eval()
    imgs = torch.rand(3, 1, 8, 8, generator=g)
    with torch.no_grad():
        pred, mask = reference.mae_forward(model, imgs, 0.75,
                                           torch.Generator().manual_seed(MASKING_SEED + 3))
    case: dict[str, Any] = {"imgs": imgs, "mask_ratio": 0.75, "seed": MASKING_SEED + 3,
                            "model": SMALL, "pred": pred, "mask": mask}
    case.update({f"state.{k}": v for k, v in model.state_dict().items()})
    return case


def training_case(reference: Any, g: torch.Generator) -> dict[str, Any]:
    """train_mae on a RecordingMAE given in eval mode: the batches it was shown, in order,
    and its probe parameter, which only AdamW's weight decay moves."""
    from torchgrade.course.mae import RecordingMAE

    torch.manual_seed(MASKING_SEED + 4)
    model = RecordingMAE(**SMALL).eval()
    state = {f"state.{k}": v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(10, 1, 8, 8, generator=g)
    reference.train_mae(model, images, **TRAINING,
                        generator=torch.Generator().manual_seed(MASKING_SEED + 5))
    return {"images": images, "seed": MASKING_SEED + 5, "model": SMALL, "kwargs": TRAINING,
            "seen": torch.stack(model.seen), "probe": model.probe.detach().clone(), **state}
