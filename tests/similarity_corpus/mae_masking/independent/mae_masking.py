"""`mae_masking`, written independently of the reference from the stub and the handout.

An honest solution for the similarity tests: MAE's patches, random masking, masked loss.

Fill in the functions below (keep their names and signatures: the grader calls them directly).
README.md explains each one; `torchgrade check mae_masking` runs the public checks.

Paper: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners"
(CVPR 2022). The official code is `models_mae.py` in facebookresearch/mae.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NORM_PIX_EPS = 1e-6  # added to the per-patch (unbiased) variance, as in models_mae.py


def _need_rank(t: Tensor, rank: int, name: str) -> None:
    if not isinstance(t, Tensor) or t.dim() != rank:
        got = t.dim() if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a {rank}-D tensor, got {got}")


def _need_pos_int(value: object, name: str) -> int:
    if type(value) is not int or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping patches: ``[N, C, H, W] -> [N, L, p*p*C]``.

    Patches are numbered row by row (``L = h * w`` with ``h = H / p``, ``w = W / p``); inside a
    patch the values are ordered (row in patch, column in patch, channel), the official
    layout: ``reshape(N, C, h, p, w, p)``, ``einsum('nchpwq->nhwpqc')``,
    ``reshape(N, h*w, p*p*C)``. Non-square images are fine. Raises ValueError when ``imgs``
    is not 4-D, ``patch_size`` is not a positive int, or H or W is not a multiple of it.
    """
    _need_rank(imgs, 4, "imgs")
    p = _need_pos_int(patch_size, "patch_size")
    n, c, height, width = imgs.shape
    if height % p or width % p:
        raise ValueError(f"patch_size {p} must divide the image size {height}x{width}")
    rows, cols = height // p, width // p
    # split both spatial axes, then move channels last: n, rows, cols, p(row), p(col), c
    out = imgs.reshape(n, c, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1)
    return out.reshape(n, rows * cols, c * p * p)


def unpatchify(x: Tensor, patch_size: int, channels: int,
               grid_size: tuple[int, int] | None = None) -> Tensor:
    """The inverse of :func:`patchify`: ``[N, L, p*p*C] -> [N, C, h*p, w*p]``.

    ``grid_size=(h, w)`` is the number of patches per column and per row (``h * w == L``);
    by default the grid is square (``L`` must then be a perfect square). Raises ValueError when
    ``x`` is not 3-D, its last dimension is not ``p*p*channels``, or the grid does not fit L.
    """
    _need_rank(x, 3, "x")
    p = _need_pos_int(patch_size, "patch_size")
    c = _need_pos_int(channels, "channels")
    n, length, dim = x.shape
    if dim != c * p * p:
        raise ValueError(f"x: last dimension {dim} is not patch_size**2 * channels = {c * p * p}")
    if grid_size is None:
        side = math.isqrt(length)
        if side * side != length:
            raise ValueError(f"grid_size: {length} patches do not make a square grid")
        grid_size = (side, side)
    rows, cols = grid_size
    if rows * cols != length:
        raise ValueError(f"grid_size {grid_size} holds {rows * cols} patches, x has {length}")
    out = x.reshape(n, rows, cols, p, p, c).permute(0, 5, 1, 3, 2, 4)
    return out.reshape(n, c, rows * p, cols * p)


def random_masking(x: Tensor, mask_ratio: float, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Keep a random subset of each row's tokens, as MAE's per-sample shuffle.

    ``x`` is ``[N, L, D]``. Each row keeps ``len_keep = int(L * (1 - mask_ratio))`` tokens
    (``int`` truncates: L=100 at 0.8 keeps 19, L=4 at 0.8 keeps 0). The draw is exactly::

        noise = torch.rand(N, L, generator=generator, device=x.device)
        ids_shuffle = argsort(noise, dim=1)       # ascending: small noise is kept
        ids_restore = argsort(ids_shuffle, dim=1)

    so a seeded ``generator`` (on ``x.device``) reproduces it. Returns

    - ``x_masked [N, len_keep, D]``: the kept tokens, in shuffled order (``ids_shuffle[:, :K]``);
    - ``mask [N, L]``: float32, **0 is keep, 1 is remove**, in the original token order;
    - ``ids_restore [N, L]`` (int64): the permutation that undoes the shuffle.

    Raises ValueError when ``x`` is not 3-D or ``mask_ratio`` is not in [0, 1).
    """
    _need_rank(x, 3, "x")
    ratio = float(mask_ratio)
    if not 0.0 <= ratio < 1.0:  # NaN fails this too
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    n, length, dim = x.shape
    keep = int(length * (1 - ratio))
    noise = torch.rand(n, length, generator=generator, device=x.device)
    order = torch.argsort(noise, dim=1)
    back = torch.argsort(order, dim=1)
    kept_idx = order[:, :keep]
    visible = torch.gather(x, 1, kept_idx.unsqueeze(-1).expand(n, keep, dim))
    removed = torch.ones(n, length, dtype=torch.float32, device=x.device)
    removed.scatter_(1, kept_idx, 0.0)
    return visible, removed, back


def restore_order(x: Tensor, ids_restore: Tensor) -> Tensor:
    """Un-shuffle a full sequence: ``out[n, i] = x[n, ids_restore[n, i]]``.

    ``x`` is ``[N, L, D]`` in shuffled order (the visible tokens followed by the mask tokens);
    ``ids_restore`` is ``[N, L]`` from :func:`random_masking`. Raises ValueError when the
    shapes do not match or ``ids_restore`` is not an integer tensor.
    """
    _need_rank(x, 3, "x")
    if ids_restore.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"ids_restore must hold integers, got {ids_restore.dtype}")
    if ids_restore.shape != x.shape[:2]:
        raise ValueError(f"ids_restore has shape {tuple(ids_restore.shape)}, expected "
                         f"{tuple(x.shape[:2])}")
    index = ids_restore.long()[..., None].expand_as(x)
    return x.gather(dim=1, index=index)


def mae_loss(pred: Tensor, imgs: Tensor, mask: Tensor, patch_size: int,
             norm_pix_loss: bool = True) -> Tensor:
    """MAE's reconstruction loss: mean squared error on the removed patches only.

    The target is ``patchify(imgs, patch_size)`` ``[N, L, p*p*C]``. With ``norm_pix_loss``
    each target patch is normalised by its own mean and unbiased variance,
    ``(t - mean) / sqrt(var + 1e-6)``. The squared error is averaged over each patch's values,
    then over the patches with ``mask == 1`` (removed; 0 is keep)::

        loss = sum_{n,l} mask[n,l] * mean_j (pred - target)^2  /  sum_{n,l} mask[n,l]

    Returns a 0-dim tensor (in the promoted dtype of ``pred`` and ``imgs``) on the inputs'
    device that back-propagates into ``pred``. Raises ValueError when shapes do not match,
    when ``norm_pix_loss`` is asked of one-value patches (no unbiased variance), or when the
    mask removes no patch (the official code divides 0 by 0 and returns NaN).
    """
    target = patchify(imgs, patch_size)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} does not match the patches "
                         f"{tuple(target.shape)}")
    if mask.shape != target.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} should be {tuple(target.shape[:2])}")
    if norm_pix_loss:
        if target.shape[-1] < 2:
            raise ValueError("norm_pix_loss needs patches of at least two values")
        centre = target.mean(-1, keepdim=True)
        spread = target.var(-1, keepdim=True)  # unbiased (P - 1)
        target = (target - centre) / torch.sqrt(spread + NORM_PIX_EPS)
    weights = mask.to(torch.result_type(pred, target))
    total = weights.sum()
    if total.item() == 0:
        raise ValueError("mask removes no patch: nothing to reconstruct")
    per_patch = ((pred - target) ** 2).mean(-1)
    return (per_patch * weights).sum() / total


def mae_forward(model: nn.Module, imgs: Tensor, mask_ratio: float = 0.75,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One MAE forward pass with the course's ``TinyMAE``: ``imgs -> (pred, mask)``.

    ``patchify`` with ``model.patch_size``, ``model.embed``, :func:`random_masking` (with
    ``generator``), ``model.encode`` on the visible tokens only, then ``L - K`` copies of
    ``model.mask_token`` appended after the encoded tokens, :func:`restore_order`, and
    ``model.decode``. ``pred`` is ``[N, L, p*p*C]`` in patchify layout and original order;
    ``mask`` as from :func:`random_masking`.
    """
    tokens = model.embed(patchify(imgs, model.patch_size))
    seen, mask, restore = random_masking(tokens, mask_ratio, generator)
    encoded = model.encode(seen)
    n, length = mask.shape
    missing = length - encoded.shape[1]
    fillers = model.mask_token.expand(n, missing, encoded.shape[-1])
    stacked = torch.cat((encoded, fillers), dim=1)
    return model.decode(restore_order(stacked, restore)), mask


def train_mae(model: nn.Module, images: Tensor, *, steps: int, batch_size: int, lr: float,
              mask_ratio: float = 0.75, norm_pix_loss: bool = True,
              generator: torch.Generator | None = None) -> nn.Module:
    """Train ``model`` (a course ``TinyMAE``) on ``images`` and return it (the same object).

    ``torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)`` for ``steps`` steps.
    Each step draws ``batch_size`` image indices with
    ``torch.randint(len(images), (batch_size,), generator=generator)`` (on the generator's
    device, then moved to the images'), runs :func:`mae_forward` with the same ``generator``
    and minimises ``mae_loss(pred, batch, mask, model.patch_size, norm_pix_loss)``. The model
    is returned in the train/eval mode it came in. Deterministic given a seeded generator.

    Raises ValueError (naming the argument) when ``images`` is not a non-empty 4-D floating
    tensor, ``steps`` or ``batch_size`` is not a positive int, ``lr`` is not a finite
    number > 0, or ``mask_ratio`` is not in [0, 1) or keeps every patch.
    """
    if not (isinstance(images, Tensor) and images.dim() == 4 and len(images) > 0
            and images.is_floating_point()):
        raise ValueError("images must be a non-empty 4-D floating tensor [N, C, H, W]")
    _need_pos_int(steps, "steps")
    _need_pos_int(batch_size, "batch_size")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) \
            or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    length = (images.shape[2] // model.patch_size) * (images.shape[3] // model.patch_size)
    if not 0.0 <= float(mask_ratio) < 1.0 or int(length * (1 - mask_ratio)) >= length:
        raise ValueError(f"mask_ratio {mask_ratio} must be in [0, 1) and remove a patch")
    was_training = model.training
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    device_of_draws = generator.device if generator is not None else "cpu"
    step = 0
    while step < steps:
        picks = torch.randint(len(images), (batch_size,), generator=generator,
                              device=device_of_draws)
        batch = images[picks.to(images.device)]
        pred, mask = mae_forward(model, batch, mask_ratio, generator)
        loss = mae_loss(pred, batch, mask, model.patch_size, norm_pix_loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
    model.train(was_training)
    return model
