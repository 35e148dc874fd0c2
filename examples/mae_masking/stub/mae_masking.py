"""Assignment `mae_masking`: MAE's patches, random masking, masked loss and a tiny MAE.

Fill in the functions below (keep their names and signatures: the grader calls them directly).
README.md explains each one; `torchgrade check mae_masking` runs the public checks.

Paper: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners"
(CVPR 2022). The official code is `models_mae.py` in facebookresearch/mae.

The ids in square brackets name the README's rules (the checks name the ones they pin). For
every function: bad arguments raise ValueError naming the argument [conv.names-argument];
inputs are never modified in place [conv.no-inplace].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NORM_PIX_EPS = 1e-6  # added to the per-patch (unbiased) variance, as in models_mae.py


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
    raise NotImplementedError("patchify is not written yet: see README.md")


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
    raise NotImplementedError("unpatchify is not written yet: see README.md")


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
    raise NotImplementedError("random_masking is not written yet: see README.md")


def restore_order(x: Tensor, ids_restore: Tensor) -> Tensor:
    """Un-shuffle a full sequence: ``out[n, i] = x[n, ids_restore[n, i]]`` [restore.gather].

    ``x`` is ``[N, L, D]`` in shuffled order (the visible tokens followed by the mask tokens);
    ``ids_restore`` is ``[N, L]`` from :func:`random_masking`.

    Raises:
        ValueError: ``x`` is not 3-D or ``ids_restore`` is not ``[N, L]`` of ``x``
            [restore.shapes].
    """
    raise NotImplementedError("restore_order is not written yet: see README.md")


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
    raise NotImplementedError("mae_loss is not written yet: see README.md")


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
    raise NotImplementedError("mae_forward is not written yet: see README.md")


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
    raise NotImplementedError("train_mae is not written yet: see README.md")
