"""Public fixture cases of the nt_xent grader, computed from the reference.

`torchgrade author fixtures nt_xent` runs `build` against the hidden reference and stores the
result in fixtures/public.safetensors, so public checks need no solution on a student's laptop.
"""

from __future__ import annotations

from typing import Any

import torch


def build(reference: Any) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(20261201)
    z_i = torch.randn(8, 16, generator=g)
    z_j = torch.randn(8, 16, generator=g)
    cases: dict[str, dict[str, Any]] = {
        "random": {"z_i": z_i, "z_j": z_j, "temperature": 0.5,
                   "expected": reference.nt_xent_loss(z_i, z_j, 0.5).detach()},
    }
    a = torch.randn(6, 10, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    cases["correlated_f64"] = {"z_i": a, "z_j": b, "temperature": 0.2,
                               "expected": reference.nt_xent_loss(a, b, 0.2).detach()}
    torch.manual_seed(7)
    head = reference.ProjectionHead(32, 64, 16)
    h = torch.randn(5, 32, generator=g)
    cases["head"] = {f"sd.{k}": v.detach().clone() for k, v in head.state_dict().items()}
    cases["head"].update({"h": h, "expected": head(h).detach()})
    return cases
