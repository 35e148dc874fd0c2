"""Public fixture cases of the vit_attention grader, computed from the reference.

`torchgrade author fixtures vit_attention` runs `build` against the hidden reference and stores
the result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. Model weights are stored as ``sd.<name>`` and loaded into the student's model.
"""

from __future__ import annotations

from typing import Any

import torch

ROLLOUTS = (("mean", 0.0), ("max", 0.5), ("min", 0.3))  # (head_fusion, discard_ratio)


def random_attentions(g: torch.Generator, depth: int, b: int, h: int, n: int,
                      sharpness: float = 2.0) -> list[torch.Tensor]:
    """``depth`` random post-softmax attentions ``[b, h, n, n]`` (rows sum to 1, no ties)."""
    return [(sharpness * torch.randn(b, h, n, n, generator=g)).softmax(-1)
            for _ in range(depth)]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"sd.{k}": v.detach().clone() for k, v in model.state_dict().items()}


def build(reference: Any) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(20261202)
    cases: dict[str, dict[str, Any]] = {}

    torch.manual_seed(11)
    mhsa = reference.MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        out, attn = mhsa(x, return_attention=True)
    cases["mhsa"] = {**_state(mhsa), "x": x, "out": out, "attn": attn}

    torch.manual_seed(12)
    vit = reference.VisionTransformer(8, 2, 3, 5, 16, 2, 2, mlp_ratio=2.0).eval()
    with torch.no_grad():  # untrained CLS/positions are tiny: give them weight for the check
        vit.cls_token.normal_(0.0, 1.0, generator=g)
        vit.pos_embed.normal_(0.0, 1.0, generator=g)
    images = torch.randn(3, 3, 8, 8, generator=g)
    with torch.no_grad():
        logits, atts = vit(images, return_attention=True)
    cases["vit"] = {**_state(vit), "images": images, "logits": logits,
                    **{f"attn.{i}": a for i, a in enumerate(atts)}}

    atts = random_attentions(g, 3, 2, 3, 7)  # grid (2, 3)
    maps: dict[str, Any] = {f"attn.{i}": a for i, a in enumerate(atts)}
    maps["cls.last"] = reference.cls_attention_maps(atts, (2, 3))
    maps["cls.first"] = reference.cls_attention_maps(atts, (2, 3), layer=0)
    for fusion, ratio in ROLLOUTS:
        maps[f"rollout.{fusion}.{ratio}"] = reference.attention_rollout(
            atts, head_fusion=fusion, discard_ratio=ratio, grid_size=(2, 3))
    cases["maps"] = maps

    attn = random_attentions(g, 1, 2, 3, 13)[0]  # grid (3, 4), patch size 4
    cases["distance"] = {"attn": attn, "expected": reference.mean_attention_distance(
        attn, (3, 4), 4)}
    return cases
