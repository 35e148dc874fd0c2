"""A typical mistake: see about.toml next to this file."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check_batch(t, name):
    if not torch.is_tensor(t) or t.ndim < 2 or not t.is_floating_point() or len(t) == 0:
        raise ValueError(f"{name}: expected a non-empty floating tensor [B, ...]")


def _check_inputs(real, fake, lambda_gp):
    _check_batch(real, "real")
    _check_batch(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"fake has shape {tuple(fake.shape)} but real has {tuple(real.shape)}")
    if isinstance(lambda_gp, bool) or not isinstance(lambda_gp, (int, float)) \
            or math.isnan(lambda_gp) or math.isinf(lambda_gp) or lambda_gp < 0:
        raise ValueError(f"lambda_gp must be a non-negative finite number, not {lambda_gp}")


def gradient_penalty(critic, real, fake, lambda_gp=10.0, generator=None):
    _check_inputs(real, fake, lambda_gp)
    batch = real.size(0)
    shape = (batch,) + (1,) * (real.ndim - 1)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = torch.lerp(fake, real, eps)  # eps * real + (1 - eps) * fake
    if not mixed.requires_grad:
        mixed = mixed.detach().requires_grad_()
    score = critic(mixed)
    grads = torch.autograd.grad(outputs=score, inputs=mixed,
                                grad_outputs=torch.ones_like(score), create_graph=True)[0]
    slopes = torch.linalg.vector_norm(grads.flatten(start_dim=1), ord=2, dim=1)
    return torch.mean((slopes - 1.0).pow(2)) * lambda_gp


def critic_loss(critic, real, fake, lambda_gp=10.0, generator=None):
    _check_inputs(real, fake, lambda_gp)
    fake = fake.detach()
    penalty = gradient_penalty(critic, real, fake, lambda_gp, generator=generator)
    d_real, d_fake = critic(real), critic(fake)
    return penalty + F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) \
        + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


def generator_loss(critic, fake):
    _check_batch(fake, "fake")
    d_fake = critic(fake)
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.fc(h.flatten(1))


def _pos_int(v, name):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{name} must be a positive integer")


def train_wgan_gp(generator, critic, sample_real, *, steps, n_critic=5, lr=1e-4,
                  betas=(0.0, 0.9), lambda_gp=10.0, batch_size=64, latent_dim,
                  generator_rng=None):
    for v, name in ((steps, "steps"), (n_critic, "n_critic"), (batch_size, "batch_size"),
                    (latent_dim, "latent_dim")):
        _pos_int(v, name)
    if not isinstance(lr, (int, float)) or not lr > 0 or math.isinf(lr):
        raise ValueError("lr must be > 0")
    dev = next(generator.parameters()).device
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=tuple(betas))
    c_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=tuple(betas))
    log = {"critic_loss": [], "gradient_penalty": [], "wasserstein_estimate": [],
           "generator_loss": []}
    for _ in range(steps):
        losses, gps, ws = [], [], []
        for _ in range(n_critic):
            real = sample_real(batch_size).to(dev)
            z = torch.randn(batch_size, latent_dim, generator=generator_rng, device=dev)
            fake = generator(z).detach()
            c_opt.zero_grad()
            w = critic(real).mean() - critic(fake).mean()
            gp = gradient_penalty(critic, real, fake, lambda_gp, generator_rng)
            loss = critic_loss(critic, real, fake, lambda_gp, generator_rng)
            loss.backward()
            c_opt.step()
            losses.append(float(loss))
            gps.append(float(gp))
            ws.append(float(w))
        log["critic_loss"].append(sum(losses) / n_critic)
        log["gradient_penalty"].append(sum(gps) / n_critic)
        log["wasserstein_estimate"].append(sum(ws) / n_critic)
        g_opt.zero_grad()
        z = torch.randn(batch_size, latent_dim, generator=generator_rng, device=dev)
        g_loss = generator_loss(critic, generator(z))
        g_loss.backward()
        g_opt.step()
        log["generator_loss"].append(float(g_loss))
    return log
