"""Public fixture cases of the ddpm_sampler grader, computed from the reference.

`torchgrade author fixtures ddpm_sampler` runs `build` against the hidden reference and stores
the result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. Seeded cases store the generator's seed: the public check seeds a ``torch.Generator``
with it and the student's draws must reproduce the reference's. The schedules the public
checks hand to the student are rebuilt from the stored betas by the grader itself.
"""

from __future__ import annotations

from typing import Any

import torch

STEP_SEED = 20261205
SAMPLE_SEED = 20261206
ORACLE_MU, ORACLE_S = 0.5, 0.2


def build(reference: Any) -> dict[str, dict[str, Any]]:
    from torchgrade.course.toy2d import GaussianOracle

    g = torch.Generator().manual_seed(20261204)
    cases: dict[str, dict[str, Any]] = {
        "schedules": {"linear": reference.make_beta_schedule(10, "linear", 1e-3, 0.2),
                      "cosine": reference.make_beta_schedule(10, "cosine")},
    }
    betas = reference.make_beta_schedule(20, "linear", 1e-3, 0.2)
    sched = reference.DiffusionSchedule.from_betas(betas)
    cases["fields"] = {"betas": betas, "alphas": sched.alphas,
                       "alphas_cumprod": sched.alphas_cumprod,
                       "alphas_cumprod_prev": sched.alphas_cumprod_prev}
    x0 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 5, 19, 11])
    x_t = reference.q_sample(x0, t, noise, sched)
    cases["forward"] = {"x0": x0, "noise": noise, "t": t, "x_t": x_t,
                        "x0_hat": reference.predict_x0(x_t, t, noise, sched)}
    x = 1.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, generator=g, dtype=torch.float64)
    step: dict[str, Any] = {"x_t": x, "eps": eps, "seed": STEP_SEED}
    for name, t_, variance, clip in (("mid_tilde", 7, "beta_tilde", False),
                                     ("mid_beta", 7, "beta", False),
                                     ("last_beta", 0, "beta", False),
                                     ("clip", 3, "beta_tilde", True)):
        step[name] = reference.ddpm_step(eps, t_, x, sched, torch.Generator().manual_seed(
            STEP_SEED), variance=variance, clip_sample=clip)
    cases["step"] = step
    oracle = GaussianOracle(ORACLE_MU, ORACLE_S, sched.alphas_cumprod)
    cases["samplers"] = {
        "seed": SAMPLE_SEED, "mu": ORACLE_MU, "s": ORACLE_S,
        "ddpm": reference.ddpm_sample(oracle, (6, 2), sched,
                                      torch.Generator().manual_seed(SAMPLE_SEED)),
        "ddim_eta0": reference.ddim_sample(oracle, (6, 2), sched, 6, 0.0,
                                           torch.Generator().manual_seed(SAMPLE_SEED)),
        "ddim_eta1": reference.ddim_sample(oracle, (6, 2), sched, 6, 1.0,
                                           torch.Generator().manual_seed(SAMPLE_SEED)),
    }
    return cases
