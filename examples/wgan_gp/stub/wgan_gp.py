"""Assignment `wgan_gp`: WGAN-GP's gradient penalty, losses, critic and training loop.

Fill in the functions below (keep their names and signatures: the grader calls them directly).
README.md explains each one; `torchgrade check wgan_gp` runs the public checks.

Paper: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of Wasserstein
GANs" (NeurIPS 2017), Algorithm 1. The course text's MNIST GAN is the starting point, but its
discriminator (Sigmoid, BatchNorm, BCE) is not a WGAN-GP critic: see README.md.

The ids in square brackets name the README's rules (the checks name the ones they pin). For
every function: bad arguments raise ValueError naming the argument [conv.names-argument];
inputs are never modified in place [conv.no-inplace].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


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
    raise NotImplementedError("gradient_penalty is not written yet: see README.md, section 1")


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
    raise NotImplementedError("critic_loss is not written yet: see README.md, section 2")


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """The generator's loss ``-mean D(fake)``; ``fake`` stays in the generator's graph.

    A 0-dim tensor that back-propagates into ``fake`` [loss.generator] [loss.scalar].

    Raises:
        ValueError: ``fake`` is not a floating tensor ``[B, ...]`` with B >= 1 and at least
            2 dims [args.batch].
    """
    raise NotImplementedError("generator_loss is not written yet: see README.md, section 2")


class Critic(nn.Module):
    """The course text's MNIST discriminator made a WGAN-GP critic: ``[B, 1, 28, 28] -> [B, 1]``.

    Conv(1->64, 4, s2) -> LeakyReLU(0.2) -> Conv(64->128, 4, s2) -> LeakyReLU(0.2) ->
    Flatten -> Linear(128*7*7 -> 1) [critic.layers]. No Sigmoid (the score is unbounded)
    [critic.no-sigmoid] and no BatchNorm (it couples the samples of a batch, so the
    per-sample gradient norm is not the critic's) [critic.no-batchnorm].
    """

    def __init__(self) -> None:
        super().__init__()
        raise NotImplementedError("Critic is not written yet: see README.md, section 3")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Critic.forward is not written yet: see README.md, section 3")


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
    raise NotImplementedError("train_wgan_gp is not written yet: see README.md, section 4")
