"""A mae_masking submission with one typical mistake: len_keep = round(L * (1 - mask_ratio))
instead of int(): L=100 at 0.8 keeps 20, not 19.
"""


from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _check_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _check_dims(t, name, dims):
    if not isinstance(t, torch.Tensor) or t.ndim != dims:
        raise ValueError(f"{name} must be a {dims}-dimensional tensor")
    return t


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    _check_dims(imgs, "imgs", 4)
    p = _check_int(patch_size, "patch_size")
    N, C, H, W = imgs.shape
    if H % p != 0 or W % p != 0:
        raise ValueError(f"image size {H}x{W} is not divisible by patch_size={p}")
    h, w = H // p, W // p
    x = imgs.reshape(N, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)  # N h w p q C
    return x.reshape(N, h * w, p * p * C)


def unpatchify(x: Tensor, patch_size: int, channels: int,
               grid_size: tuple[int, int] | None = None) -> Tensor:
    _check_dims(x, "x", 3)
    p = _check_int(patch_size, "patch_size")
    C = _check_int(channels, "channels")
    N, L, D = x.shape
    if D != p * p * C:
        raise ValueError(f"x has patches of {D} values, expected patch_size**2 * channels")
    if grid_size is None:
        h = int(round(math.sqrt(L)))
        w = h
    else:
        h, w = int(grid_size[0]), int(grid_size[1])
    if h * w != L or h <= 0:
        raise ValueError(f"grid_size {grid_size} does not match L={L}")
    x = x.reshape(N, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4)  # N C h p w q
    return x.reshape(N, C, h * p, w * p)


def random_masking(x: Tensor, mask_ratio: float, generator: torch.Generator | None = None):
    _check_dims(x, "x", 3)
    if not isinstance(mask_ratio, int | float) or isinstance(mask_ratio, bool) or \
            math.isnan(mask_ratio) or mask_ratio < 0 or mask_ratio >= 1:
        raise ValueError(f"mask_ratio must lie in [0, 1), got {mask_ratio}")
    N, L, D = x.shape
    len_keep = round(L * (1 - mask_ratio))
    noise = torch.rand(N, L, generator=generator, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = x.gather(1, ids_keep[:, :, None].repeat(1, 1, D))
    mask = torch.ones(N, L, device=x.device, dtype=torch.float32)
    mask.scatter_(1, ids_keep, 0.0)  # 0 = keep, directly at the kept positions
    return x_masked, mask, ids_restore


def restore_order(x: Tensor, ids_restore: Tensor) -> Tensor:
    _check_dims(x, "x", 3)
    _check_dims(ids_restore, "ids_restore", 2)
    if ids_restore.shape != x.shape[:2]:
        raise ValueError("ids_restore must have shape [N, L] matching x")
    return torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, x.shape[-1]))


def mae_loss(pred: Tensor, imgs: Tensor, mask: Tensor, patch_size: int,
             norm_pix_loss: bool = True) -> Tensor:
    _check_dims(pred, "pred", 3)
    _check_dims(mask, "mask", 2)
    target = patchify(imgs, patch_size)
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)}, target {tuple(target.shape)}")
    if mask.shape != target.shape[:2]:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(target.shape[:2])}")
    if norm_pix_loss and target.shape[-1] < 2:
        raise ValueError("norm_pix_loss needs patches of at least 2 values")
    removed = mask > 0.5
    if not removed.any():
        raise ValueError("mask has no removed patch, the loss would be NaN")
    if norm_pix_loss:
        mu = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, unbiased=True, keepdim=True)
        target = (target - mu) / torch.sqrt(var + 1e-6)
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return per_patch[removed].mean()


def mae_forward(model: nn.Module, imgs: Tensor, mask_ratio: float = 0.75,
                generator: torch.Generator | None = None):
    x = model.embed(patchify(imgs, model.patch_size))
    x, mask, ids_restore = random_masking(x, mask_ratio, generator)
    x = model.encode(x)
    N, L = mask.shape
    fill = model.mask_token.repeat(N, L - x.shape[1], 1)
    x = restore_order(torch.cat((x, fill), dim=1), ids_restore)
    return model.decode(x), mask


def train_mae(model: nn.Module, images: Tensor, *, steps: int, batch_size: int, lr: float,
              mask_ratio: float = 0.75, norm_pix_loss: bool = True,
              generator: torch.Generator | None = None) -> nn.Module:
    _check_dims(images, "images", 4)
    if not images.is_floating_point() or len(images) == 0:
        raise ValueError("images must be a non-empty float tensor")
    _check_int(steps, "steps")
    _check_int(batch_size, "batch_size")
    if not lr > 0:
        raise ValueError("lr must be positive")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    was_training = model.training
    model.train()
    for _ in range(steps):
        where = generator.device if generator is not None else "cpu"
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=generator, device=where)
        batch = images[idx.to(images.device)]
        pred, mask = mae_forward(model, batch, mask_ratio, generator)
        loss = mae_loss(pred, batch, mask, model.patch_size, norm_pix_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.train(was_training)
    return model
