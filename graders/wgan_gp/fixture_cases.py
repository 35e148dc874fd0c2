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

from torchgrade.course.wgan import ConstantGenerator, FixedSampler, LinearCritic, ToyCritic

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
    return {"losses": case, "training": training_case(reference)}


TRAINING = {"steps": 2, "n_critic": 3, "lr": 0.01, "batch_size": 4, "latent_dim": 2}


def training_case(reference: Any) -> dict[str, Any]:
    """A 2-step run that no random draw changes (a constant generator, fixed data, a linear
    critic whose penalty ignores eps), both modules given in eval mode."""
    g = torch.Generator().manual_seed(SEED + 3)
    point, data = torch.randn(3, generator=g), torch.randn(4, 3, generator=g) + 1.0
    w = 0.3 * torch.randn(3, generator=g)
    gen, critic = ConstantGenerator(point).eval(), LinearCritic(w).eval()
    history = reference.train_wgan_gp(gen, critic, FixedSampler(data), **TRAINING,
                                      generator_rng=torch.Generator().manual_seed(SEED + 4))
    case: dict[str, Any] = {"point": point, "data": data, "w": w, "seed": SEED + 4,
                            "kwargs": TRAINING}
    case.update({f"history.{k}": torch.tensor(v, dtype=torch.float64)
                 for k, v in history.items()})
    return case
