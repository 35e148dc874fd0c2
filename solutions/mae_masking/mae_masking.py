# BEGIN SOLUTION
"""Reference solution for `mae_masking`: MAE's patches, random masking, loss and training loop.

Why it exists: graders compare submissions with these functions value for value (patchify,
the masking draw, the un-shuffle, the loss, the forward pass) and by training outcome (the
training loop). It follows the contract of ``spec/assignments.md`` section 4 exactly: the
official code's patch layout and masking draw, but with the randomness passed in, and a
``ValueError`` where the official loss returns NaN (a mask with no removed patch).

Paper: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners"
(CVPR 2022); the structure follows the official ``models_mae.py``.
"""
# END SOLUTION
# BEGIN STUB
# """Assignment `mae_masking`: MAE's patches, random masking, masked loss and a tiny MAE.
#
# Fill in the functions below (keep their names and signatures: the grader calls them directly).
# README.md explains each one; `torchgrade check mae_masking` runs the public checks.
#
# Paper: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners"
# (CVPR 2022). The official code is `models_mae.py` in facebookresearch/mae.
#
# The ids in square brackets name the README's rules (the checks name the ones they pin). For
# every function: bad arguments raise ValueError naming the argument [conv.names-argument];
# inputs are never modified in place [conv.no-inplace].
# """
# END STUB

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NORM_PIX_EPS = 1e-6  # added to the per-patch (unbiased) variance, as in models_mae.py


# BEGIN SOLUTION
def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _positive_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _tensor(x: object, name: str, dims: int, layout: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != dims:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a {dims}-D tensor {layout}, got {got}")
    return x


def _mask_ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0.0 <= value < 1.0):  # NaN fails the comparison too
        raise ValueError(f"mask_ratio must be a number in [0, 1), got {value!r}")
    return float(value)
# END SOLUTION


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping patches: ``[N, C, H, W] -> [N, L, p*p*C]``.

    Patches are numbered row by row (``L = h * w`` with ``h = H / p``, ``w = W / p``); inside a
    patch the values are ordered (row in patch, column in patch, channel), the official
    layout: ``reshape(N, C, h, p, w, p)``, ``einsum('nchpwq->nhwpqc')``,
    ``reshape(N, h*w, p*p*C)`` [patch.layout]. Non-square images are fine.

    Raises:
        ValueError: ``imgs`` is not a 4-D tensor [patchify.imgs-rank]; ``patch_size`` is not
            a positive int [args.patch-size]; H or W is not a multiple of ``patch_size``
            [patchify.divides].
    """
    # BEGIN SOLUTION
    imgs = _tensor(imgs, "imgs", 4, "[N, C, H, W]")
    p = _positive_int(patch_size, "patch_size")
    n, c, height, width = imgs.shape
    if height % p or width % p:
        raise ValueError(f"patch_size {p} must divide the image size, got imgs of "
                         f"{height}x{width}")
    h, w = height // p, width // p
    x = imgs.reshape(n, c, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)  # [N, h, w, p, p, C]
    return x.reshape(n, h * w, p * p * c)  # [N, L, p*p*C]
    # END SOLUTION
    # STUB: raise NotImplementedError("patchify is not written yet: see README.md")


def unpatchify(x: Tensor, patch_size: int, channels: int,
               grid_size: tuple[int, int] | None = None) -> Tensor:
    """The inverse of :func:`patchify`: ``[N, L, p*p*C] -> [N, C, h*p, w*p]`` [patch.inverse].

    ``grid_size=(h, w)`` is the number of patches per column and per row (``h * w == L``);
    by default the grid is square, ``h = w = sqrt(L)`` [patch.grid].

    Raises:
        ValueError: ``x`` is not a 3-D tensor [unpatchify.x-rank]; ``patch_size`` or
            ``channels`` is not a positive int [args.patch-size]; the last dimension of ``x``
            is not ``patch_size**2 * channels`` [unpatchify.last-dim]; ``grid_size`` (or the
            square default) does not hold the L patches [unpatchify.grid].
    """
    # BEGIN SOLUTION
    x = _tensor(x, "x", 3, "[N, L, p*p*C]")
    p = _positive_int(patch_size, "patch_size")
    c = _positive_int(channels, "channels")
    n, length, dim = x.shape
    if dim != p * p * c:
        raise ValueError(f"x's last dimension must be patch_size**2 * channels = {p * p * c}, "
                         f"got {dim}")
    if grid_size is None:
        h = w = math.isqrt(length)
        if h * w != length:
            raise ValueError(f"x has L={length} patches, not a square grid: pass grid_size")
    else:
        if not isinstance(grid_size, tuple | list) or len(grid_size) != 2:
            raise ValueError(f"grid_size must be a pair (h, w), got {grid_size!r}")
        h, w = (_positive_int(g, "grid_size") for g in grid_size)
        if h * w != length:
            raise ValueError(f"grid_size {h}x{w} does not hold the L={length} patches of x")
    x = x.reshape(n, h, w, p, p, c)
    x = torch.einsum("nhwpqc->nchpwq", x)  # [N, C, h, p, w, p]
    return x.reshape(n, c, h * p, w * p)  # [N, C, H, W]
    # END SOLUTION
    # STUB: raise NotImplementedError("unpatchify is not written yet: see README.md")


def random_masking(x: Tensor, mask_ratio: float, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Keep a random subset of each row's tokens, as MAE's per-sample shuffle.

    ``x`` is ``[N, L, D]``. Each row keeps ``len_keep = int(L * (1 - mask_ratio))`` tokens
    (``int`` truncates: L=100 at 0.8 keeps 19, L=4 at 0.8 keeps 0) [masking.len-keep]. The
    draw is exactly [masking.draw]::

        noise = torch.rand(N, L, generator=generator, device=x.device)
        ids_shuffle = argsort(noise, dim=1)       # ascending: small noise is kept
        ids_restore = argsort(ids_shuffle, dim=1)

    so a seeded ``generator`` (on ``x.device``) reproduces it, and every position is equally
    likely to be removed [masking.uniform]. Returns

    - ``x_masked [N, len_keep, D]``: the kept tokens, in shuffled order (``ids_shuffle[:, :K]``)
      [masking.x-masked];
    - ``mask [N, L]``: float32, **0 is keep, 1 is remove**, in the original token order
      [masking.mask];
    - ``ids_restore [N, L]`` (int64): the permutation that undoes the shuffle
      [masking.ids-restore].

    Raises:
        ValueError: ``x`` is not a 3-D tensor [masking.x-rank]; ``mask_ratio`` is not a
            number in [0, 1), NaN included [masking.ratio-range].
    """
    # BEGIN SOLUTION
    x = _tensor(x, "x", 3, "[N, L, D]")
    ratio = _mask_ratio(mask_ratio)
    n, length, dim = x.shape
    len_keep = int(length * (1 - ratio))

    noise = torch.rand(n, length, generator=generator, device=x.device)  # [N, L] in [0, 1)
    ids_shuffle = torch.argsort(noise, dim=1)  # [N, L]
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # [N, L]

    ids_keep = ids_shuffle[:, :len_keep]  # [N, K]
    x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))  # [N, K, D]

    # 0 is keep, 1 is remove: built in shuffled order, then put back in the original order.
    mask = torch.ones(n, length, device=x.device)  # [N, L], float32
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_masked, mask, ids_restore
    # END SOLUTION
    # STUB: raise NotImplementedError("random_masking is not written yet: see README.md")


def restore_order(x: Tensor, ids_restore: Tensor) -> Tensor:
    """Un-shuffle a full sequence: ``out[n, i] = x[n, ids_restore[n, i]]`` [restore.gather].

    ``x`` is ``[N, L, D]`` in shuffled order (the visible tokens followed by the mask tokens);
    ``ids_restore`` is ``[N, L]`` from :func:`random_masking`.

    Raises:
        ValueError: ``x`` is not 3-D or ``ids_restore`` is not ``[N, L]`` of ``x``
            [restore.shapes].
    """
    # BEGIN SOLUTION
    x = _tensor(x, "x", 3, "[N, L, D]")
    ids_restore = _tensor(ids_restore, "ids_restore", 2, "[N, L]")
    if ids_restore.is_floating_point() or ids_restore.is_complex() or \
            ids_restore.dtype == torch.bool:
        raise ValueError(f"ids_restore must be an integer tensor, got {ids_restore.dtype}")
    if tuple(ids_restore.shape) != tuple(x.shape[:2]):
        raise ValueError(f"ids_restore must be [N, L] = {list(x.shape[:2])}, got "
                         f"{list(ids_restore.shape)}")
    index = ids_restore.long().unsqueeze(-1).expand(-1, -1, x.shape[2])  # [N, L, D]
    return torch.gather(x, 1, index)
    # END SOLUTION
    # STUB: raise NotImplementedError("restore_order is not written yet: see README.md")


def mae_loss(pred: Tensor, imgs: Tensor, mask: Tensor, patch_size: int,
             norm_pix_loss: bool = True) -> Tensor:
    """MAE's reconstruction loss: mean squared error on the removed patches only.

    The target is ``patchify(imgs, patch_size)`` ``[N, L, p*p*C]`` [loss.target]. With
    ``norm_pix_loss`` each target patch is normalised by its own mean and unbiased variance,
    ``(t - mean) / sqrt(var + NORM_PIX_EPS)`` [loss.norm-pix]. The squared error is averaged
    over each patch's values, then over the patches with ``mask == 1`` (removed; 0 is keep)
    [loss.removed-only]::

        loss = sum_{n,l} mask[n,l] * mean_j (pred - target)^2  /  sum_{n,l} mask[n,l]

    Returns a 0-dim tensor (in the promoted dtype of ``pred`` and ``imgs``) on the inputs'
    device that back-propagates into ``pred`` [loss.scalar].

    Raises:
        ValueError: ``pred``, ``imgs`` or ``mask`` has the wrong rank, or ``pred`` is not
            ``[N, L, p*p*C]`` and ``mask`` not ``[N, L]`` of ``imgs``' patches
            [loss.shapes]; ``norm_pix_loss`` is asked of one-value patches (no unbiased
            variance) [loss.one-value-patches]; the mask removes no patch (the official code
            divides 0 by 0 and returns NaN) [loss.no-removed].
    """
    # BEGIN SOLUTION
    pred = _tensor(pred, "pred", 3, "[N, L, p*p*C]")
    imgs = _tensor(imgs, "imgs", 4, "[N, C, H, W]")
    mask = _tensor(mask, "mask", 2, "[N, L]")
    target = patchify(imgs, patch_size)  # [N, L, p*p*C]
    if pred.shape != target.shape:
        raise ValueError(f"pred must have the patchified shape {list(target.shape)}, got "
                         f"{list(pred.shape)}")
    if tuple(mask.shape) != tuple(target.shape[:2]):
        raise ValueError(f"mask must be [N, L] = {list(target.shape[:2])}, got "
                         f"{list(mask.shape)}")
    if norm_pix_loss and target.shape[-1] < 2:
        raise ValueError("norm_pix_loss needs patches of at least 2 values (unbiased "
                         f"variance), got patch_size={patch_size} with {imgs.shape[1]} channel")
    dtype = torch.promote_types(pred.dtype, imgs.dtype)
    mask = mask.to(dtype)
    removed = mask.sum()
    if not bool(removed > 0):
        raise ValueError("mask removes no patch (no 1 in mask): the loss over removed patches "
                         "is undefined")

    target = target.to(dtype)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)  # [N, L, 1]
        var = target.var(dim=-1, keepdim=True)  # [N, L, 1], unbiased (divides by P - 1)
        target = (target - mean) / (var + NORM_PIX_EPS) ** 0.5

    loss = ((pred.to(dtype) - target) ** 2).mean(dim=-1)  # [N, L], mean over the patch
    return (loss * mask).sum() / removed  # mean over removed patches
    # END SOLUTION
    # STUB: raise NotImplementedError("mae_loss is not written yet: see README.md")


def mae_forward(model: nn.Module, imgs: Tensor, mask_ratio: float = 0.75,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One MAE forward pass with the course's ``TinyMAE``: ``imgs -> (pred, mask)``.

    ``patchify`` with ``model.patch_size``, ``model.embed``, :func:`random_masking` (with
    ``generator``), ``model.encode`` on the visible tokens only, then ``L - K`` copies of
    ``model.mask_token`` appended after the encoded tokens, :func:`restore_order`, and
    ``model.decode`` [forward.chain]. ``pred`` is ``[N, L, p*p*C]`` in patchify layout and
    original order; ``mask`` as from :func:`random_masking`.

    Raises:
        ValueError: ``imgs`` is not a 4-D tensor [forward.imgs-rank].
    """
    # BEGIN SOLUTION
    imgs = _tensor(imgs, "imgs", 4, "[N, C, H, W]")
    tokens = model.embed(patchify(imgs, model.patch_size))  # [N, L, D]
    visible, mask, ids_restore = random_masking(tokens, mask_ratio, generator)  # [N, K, D]
    latent = model.encode(visible)  # [N, K, Dd]
    n, length = ids_restore.shape
    mask_tokens = model.mask_token.expand(n, length - latent.shape[1], -1)  # [N, L-K, Dd]
    full = torch.cat([latent, mask_tokens], dim=1)  # [N, L, Dd], shuffled order
    return model.decode(restore_order(full, ids_restore)), mask  # [N, L, p*p*C], [N, L]
    # END SOLUTION
    # STUB: raise NotImplementedError("mae_forward is not written yet: see README.md")


def train_mae(model: nn.Module, images: Tensor, *, steps: int, batch_size: int, lr: float,
              mask_ratio: float = 0.75, norm_pix_loss: bool = True,
              generator: torch.Generator | None = None) -> nn.Module:
    """Train ``model`` (a course ``TinyMAE``) on ``images`` and return it (the same object).

    ``torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)`` for ``steps`` steps
    [train.optimizer]. Each step draws ``batch_size`` image indices with
    ``torch.randint(len(images), (batch_size,), generator=generator)`` (on the generator's
    device, then moved to the images'), runs :func:`mae_forward` with the same ``generator``
    and minimises ``mae_loss(pred, batch, mask, model.patch_size, norm_pix_loss)``: the
    result is deterministic given a seeded generator [train.steps]. The model is returned,
    the same object, in the train/eval mode it came in [train.returns]. The grader trains a
    TinyMAE on digits and compares its masked-patch error with baselines [train.outcome].

    Raises:
        ValueError: ``images`` is not a non-empty 4-D floating tensor [train.images];
            ``steps`` or ``batch_size`` is not a positive int [train.positive-ints]; ``lr``
            is not a finite number > 0 [train.lr]; ``mask_ratio`` is not in [0, 1)
            [masking.ratio-range]; ``mask_ratio`` keeps every patch of the model's images
            (nothing to learn) [train.keeps-all].
    """
    # BEGIN SOLUTION
    images = _tensor(images, "images", 4, "[N, C, H, W]")
    if not images.is_floating_point() or images.shape[0] < 1:
        raise ValueError(f"images must be a non-empty floating tensor, got {images.dtype} "
                         f"of shape {tuple(images.shape)}")
    _positive_int(steps, "steps")
    _positive_int(batch_size, "batch_size")
    _positive_number(lr, "lr")
    ratio = _mask_ratio(mask_ratio)
    length = getattr(model, "num_patches", None)
    if isinstance(length, int) and int(length * (1 - ratio)) == length:
        raise ValueError(f"mask_ratio {ratio} removes no patch of {length}: nothing to learn")

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    was_training = model.training
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=generator,
                            device=draw_device).to(images.device)  # [B]
        batch = images[idx]  # [B, C, H, W]
        pred, mask = mae_forward(model, batch, ratio, generator)
        loss = mae_loss(pred, batch, mask, model.patch_size, norm_pix_loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.train(was_training)
    return model
    # END SOLUTION
    # STUB: raise NotImplementedError("train_mae is not written yet: see README.md")
