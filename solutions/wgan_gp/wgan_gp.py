# BEGIN SOLUTION
"""Reference solution for `wgan_gp`: WGAN-GP's gradient penalty, losses, critic and training.

Why it exists: graders compare submissions with these functions value for value (the penalty
with a seeded ``eps`` draw, the two losses) and by training outcome (the training loop). It
follows the contract of ``spec/assignments.md`` section 1 exactly.

Paper: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of Wasserstein
GANs" (NeurIPS 2017), Algorithm 1. Where the course text is wrong: its MNIST discriminator
ends in a Sigmoid and uses BatchNorm2d, and it trains with BCE; a WGAN-GP critic outputs an
unbounded score, and BatchNorm couples the samples of a batch, which breaks the per-sample
gradient the penalty constrains (the paper: "no critic batch normalization").
"""
# END SOLUTION
# BEGIN STUB
# """Assignment `wgan_gp`: WGAN-GP's gradient penalty, losses, critic and training loop.
#
# Fill in the functions below (keep their names and signatures: the grader calls them directly).
# README.md explains each one; `torchgrade check wgan_gp` runs the public checks.
#
# Paper: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of Wasserstein
# GANs" (NeurIPS 2017), Algorithm 1. The course text's MNIST GAN is the starting point, but its
# discriminator (Sigmoid, BatchNorm, BCE) is not a WGAN-GP critic: see README.md.
#
# The ids in square brackets name the README's rules (the checks name the ones they pin). For
# every function: bad arguments raise ValueError naming the argument [conv.names-argument];
# inputs are never modified in place [conv.no-inplace].
# """
# END STUB

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

# BEGIN SOLUTION
HISTORY_KEYS = ("critic_loss", "gradient_penalty", "wasserstein_estimate", "generator_loss")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _number(value: object, name: str, *, positive: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _batch(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1 or not x.is_floating_point():
        got = (f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, Tensor)
               else type(x).__name__)
        raise ValueError(f"{name} must be a floating tensor [B, ...] with B >= 1 and at least "
                         f"2 dims, got {got}")
    return x


def _pair(real: object, fake: object) -> tuple[Tensor, Tensor]:
    real, fake = _batch(real, "real"), _batch(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got real "
                         f"{list(real.shape)} and fake {list(fake.shape)}")
    return real, fake
# END SOLUTION


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, lambda_gp: float = 10.0,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's penalty ``lambda_gp * mean_i (|grad D(x_hat_i)|_2 - 1)^2`` (Algorithm 1).

    ``real`` and ``fake`` are ``[B, ...]`` (points ``[B, D]`` or images ``[B, C, H, W]``)
    [gp.shapes]. The interpolation weights are drawn exactly as [gp.eps-draw]::

        eps = torch.rand(B, 1, ..., 1, generator=generator, device=real.device,
                         dtype=real.dtype)              # one weight per sample
        x_hat = eps * real + (1 - eps) * fake

    ``x_hat`` is made to require grad when neither input does [gp.requires-grad]. The
    gradient of ``critic(x_hat).sum()`` w.r.t. ``x_hat`` is taken with ``create_graph=True``
    (so the penalty back-propagates into the critic's parameters) [gp.create-graph], its L2
    norm per sample over all non-batch dims [gp.per-sample]. Returns the 0-dim tensor
    ``lambda_gp * mean((norm - 1) ** 2)`` [gp.formula]. ``fake`` is not detached here (the
    caller decides) [gp.no-detach].

    Raises:
        ValueError: ``real`` or ``fake`` is not a floating tensor ``[B, ...]`` with B >= 1 and
            at least 2 dims [args.batch]; ``real`` and ``fake`` differ in shape
            [args.same-shape]; ``lambda_gp`` is negative or not finite [args.lambda].
    """
    # BEGIN SOLUTION
    real, fake = _pair(real, fake)
    lam = _number(lambda_gp, "lambda_gp", positive=False)
    b = real.shape[0]
    # 1. eps ~ U[0, 1], one per sample, broadcast over the non-batch dims.
    eps = torch.rand(b, *[1] * (real.dim() - 1), generator=generator, device=real.device,
                     dtype=real.dtype)  # [B, 1, ..., 1]
    x_hat = eps * real + (1 - eps) * fake  # [B, ...]
    if not x_hat.requires_grad:
        x_hat.requires_grad_(True)
    # 2. grad_{x_hat} D(x_hat), kept in the graph so the penalty trains the critic.
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    # 3. (|grad|_2 - 1)^2 per sample, averaged over the batch.
    norm = grad.reshape(b, -1).norm(2, dim=1)  # [B]
    return lam * ((norm - 1) ** 2).mean()
    # END SOLUTION
    # BEGIN STUB
    # raise NotImplementedError("gradient_penalty is not written yet: see README.md, section 1")
    # END STUB


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, lambda_gp: float = 10.0,
                generator: torch.Generator | None = None) -> Tensor:
    """The critic's loss ``mean D(fake) - mean D(real) + GP`` (minimised by the critic).

    The penalty is :func:`gradient_penalty` with the same ``lambda_gp`` and ``generator``
    (its ``eps`` draw is the only random draw here) [loss.critic]. ``fake`` is detached from
    the generator's graph first, so this loss trains the critic only [loss.critic-detaches].
    Returns a 0-dim tensor that back-propagates into the critic [loss.scalar].

    Raises:
        ValueError: ``real`` or ``fake`` is not a floating tensor ``[B, ...]`` with B >= 1 and
            at least 2 dims [args.batch]; ``real`` and ``fake`` differ in shape
            [args.same-shape]; ``lambda_gp`` is negative or not finite [args.lambda].
    """
    # BEGIN SOLUTION
    real, fake = _pair(real, fake)
    fake = fake.detach()
    gp = gradient_penalty(critic, real, fake, lambda_gp, generator)
    return critic(fake).mean() - critic(real).mean() + gp
    # END SOLUTION
    # STUB: raise NotImplementedError("critic_loss is not written yet: see README.md, section 2")


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """The generator's loss ``-mean D(fake)``; ``fake`` stays in the generator's graph.

    A 0-dim tensor that back-propagates into ``fake`` [loss.generator] [loss.scalar].

    Raises:
        ValueError: ``fake`` is not a floating tensor ``[B, ...]`` with B >= 1 and at least
            2 dims [args.batch].
    """
    # BEGIN SOLUTION
    fake = _batch(fake, "fake")
    return -critic(fake).mean()
    # END SOLUTION
    # STUB: raise NotImplementedError("generator_loss is not written yet: see README.md, section 2")


class Critic(nn.Module):
    """The course text's MNIST discriminator made a WGAN-GP critic: ``[B, 1, 28, 28] -> [B, 1]``.

    Conv(1->64, 4, s2) -> LeakyReLU(0.2) -> Conv(64->128, 4, s2) -> LeakyReLU(0.2) ->
    Flatten -> Linear(128*7*7 -> 1) [critic.layers]. No Sigmoid (the score is unbounded)
    [critic.no-sigmoid] and no BatchNorm (it couples the samples of a batch, so the
    per-sample gradient norm is not the critic's) [critic.no-batchnorm].
    """

    def __init__(self) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=4, stride=2, padding=1),  # [B, 64, 14, 14]
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, kernel_size=4, stride=2, padding=1),  # [B, 128, 7, 7]
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # [B, 128*7*7]
        )
        self.score = nn.Linear(128 * 7 * 7, 1)
        # END SOLUTION
        # STUB: raise NotImplementedError("Critic is not written yet: see README.md, section 3")

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a [B, 1, 28, 28] tensor, got {got}")
        return self.score(self.features(x))  # [B, 1]
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("Critic.forward is not written yet: see README.md, section 3")
        # END STUB


# BEGIN SOLUTION
def _validate_training(steps: object, n_critic: object, lr: object, betas: object,
                       lambda_gp: object, batch_size: object, latent_dim: object,
                       sample_real: object) -> tuple[float, float]:
    _positive_int(steps, "steps")
    _positive_int(n_critic, "n_critic")
    _number(lr, "lr", positive=True)
    _number(lambda_gp, "lambda_gp", positive=False)
    _positive_int(batch_size, "batch_size")
    _positive_int(latent_dim, "latent_dim")
    if not callable(sample_real):
        raise ValueError(f"sample_real must be callable, got {type(sample_real).__name__}")
    if not isinstance(betas, tuple | list) or len(betas) != 2 or not all(
            not isinstance(b, bool) and isinstance(b, int | float) and 0 <= b < 1
            for b in betas):
        raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
    return float(betas[0]), float(betas[1])
# END SOLUTION


def train_wgan_gp(generator: nn.Module, critic: nn.Module, sample_real: Callable[[int], Tensor],
                  *, steps: int, n_critic: int = 5, lr: float = 1e-4,
                  betas: tuple[float, float] = (0.0, 0.9), lambda_gp: float = 10.0,
                  batch_size: int = 64, latent_dim: int,
                  generator_rng: torch.Generator | None = None) -> dict[str, list[float]]:
    """Train ``generator`` and ``critic`` with WGAN-GP (Algorithm 1) for ``steps`` generator steps.

    One Adam optimizer per network (``lr``, ``betas``). Each generator step is preceded by
    ``n_critic`` critic updates; each critic update takes ``real = sample_real(batch_size)``
    (moved to the generator's device), ``z = torch.randn(batch_size, latent_dim,
    generator=generator_rng, device=...)``, ``fake = generator(z)`` and minimises
    :func:`critic_loss` (``eps`` drawn from ``generator_rng``). The generator step draws a new
    ``z`` the same way and minimises :func:`generator_loss` [train.loop]. Data comes only from
    ``sample_real`` [train.sample-real].

    Returns the history: for each key of ``critic_loss``, ``gradient_penalty``,
    ``wasserstein_estimate`` (``mean D(real) - mean D(fake)``) the mean over the step's
    ``n_critic`` critic updates, and ``generator_loss``, each a list of ``steps`` floats
    (values before the update they drive) [train.history]. Both modules are returned to the
    train/eval mode they came in [train.modes]. The grader trains the course's toy pair on a
    randomised ring of Gaussians [train.ring] (and, on a GPU, the MNIST pair with your
    ``Critic`` [train.mnist]).

    Raises:
        ValueError: ``steps``, ``n_critic``, ``batch_size`` or ``latent_dim`` is not a
            positive int [train.positive-ints]; ``lr`` is not a finite number > 0
            [train.lr].
    """
    # BEGIN SOLUTION
    beta1, beta2 = _validate_training(steps, n_critic, lr, betas, lambda_gp, batch_size,
                                      latent_dim, sample_real)
    device = next(generator.parameters()).device
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, beta2))
    opt_c = torch.optim.Adam(critic.parameters(), lr=lr, betas=(beta1, beta2))
    modes = generator.training, critic.training
    generator.train()
    critic.train()
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    for _ in range(steps):
        sums = dict.fromkeys(HISTORY_KEYS[:3], 0.0)
        for _ in range(n_critic):
            real = sample_real(batch_size).to(device)  # [B, ...]
            z = torch.randn(batch_size, latent_dim, generator=generator_rng, device=device)
            with torch.no_grad():
                fake = generator(z)  # critic_loss detaches it anyway
            d_real, d_fake = critic(real).mean(), critic(fake).mean()
            gp = gradient_penalty(critic, real, fake, lambda_gp, generator_rng)
            loss = d_fake - d_real + gp  # = critic_loss(critic, real, fake, ...)
            opt_c.zero_grad(set_to_none=True)
            loss.backward()
            opt_c.step()
            sums["critic_loss"] += loss.item()
            sums["gradient_penalty"] += gp.item()
            sums["wasserstein_estimate"] += (d_real - d_fake).item()
        for key, total in sums.items():
            history[key].append(total / n_critic)

        z = torch.randn(batch_size, latent_dim, generator=generator_rng, device=device)
        g_loss = generator_loss(critic, generator(z))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        history["generator_loss"].append(g_loss.item())
    generator.train(modes[0])
    critic.train(modes[1])
    return history
    # END SOLUTION
    # STUB: raise NotImplementedError("train_wgan_gp is not written yet: see README.md, section 4")
