"""Public fixture cases of the wgan_gp grader, computed from the reference.

`torchgrade author fixtures wgan_gp` runs `build` against the hidden reference and stores the
result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. The critic is the course's ``ToyCritic``: its weights are stored under ``state.<name>``
and loaded into a copy built in the worker. The case stores the generator's seed: the public
check seeds a ``torch.Generator`` with it and the student's ``eps`` draw must reproduce the
reference's.
"""

from __future__ import annotations

from typing import Any

import torch

from torchgrade.course.wgan import ToyCritic

SEED = 20261101
CRITIC = {"hidden": 16, "depth": 2}


def toy_critic(seed: int) -> ToyCritic:
    torch.manual_seed(seed)
    return ToyCritic(**CRITIC)


def build(reference: Any) -> dict[str, dict[str, Any]]:
    critic = toy_critic(SEED)
    g = torch.Generator().manual_seed(SEED + 1)
    real = torch.randn(6, 2, generator=g)
    fake = 0.5 * torch.randn(6, 2, generator=g)
    case: dict[str, Any] = {"real": real, "fake": fake, "seed": SEED + 2, "lambda_gp": 10.0}
    case.update({f"state.{k}": v for k, v in critic.state_dict().items()})
    case["gp"] = reference.gradient_penalty(critic, real, fake, 10.0,
                                            torch.Generator().manual_seed(SEED + 2)).detach()
    case["critic_loss"] = reference.critic_loss(critic, real, fake, 10.0,
                                                torch.Generator().manual_seed(SEED + 2)).detach()
    case["generator_loss"] = reference.generator_loss(critic, fake).detach()
    return {"losses": case}
