"""Assignment `mae_masking`: MAE's patches, random masking, masked loss and a tiny MAE.

Fill in the functions below (keep their names and signatures: the grader calls them directly).
README.md explains each one; `torchgrade check mae_masking` runs the public checks.

Paper: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners"
(CVPR 2022). The official code is `models_mae.py` in facebookresearch/mae.
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
    ``reshape(N, h*w, p*p*C)``. Non-square images are fine. Raises ValueError when ``imgs``
    is not 4-D, ``patch_size`` is not a positive int, or H or W is not a multiple of it.
    """
    raise NotImplementedError("patchify is not written yet: see README.md")


def unpatchify(x: Tensor, patch_size: int, channels: int,
               grid_size: tuple[int, int] | None = None) -> Tensor:
    """The inverse of :func:`patchify`: ``[N, L, p*p*C] -> [N, C, h*p, w*p]``.

    ``grid_size=(h, w)`` is the number of patches per column and per row (``h * w == L``);
    by default the grid is square (``L`` must then be a perfect square). Raises ValueError when
    ``x`` is not 3-D, its last dimension is not ``p*p*channels``, or the grid does not fit L.
    """
    raise NotImplementedError("unpatchify is not written yet: see README.md")


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
    raise NotImplementedError("random_masking is not written yet: see README.md")


def restore_order(x: Tensor, ids_restore: Tensor) -> Tensor:
    """Un-shuffle a full sequence: ``out[n, i] = x[n, ids_restore[n, i]]``.

    ``x`` is ``[N, L, D]`` in shuffled order (the visible tokens followed by the mask tokens);
    ``ids_restore`` is ``[N, L]`` from :func:`random_masking`. Raises ValueError when the
    shapes do not match or ``ids_restore`` is not an integer tensor.
    """
    raise NotImplementedError("restore_order is not written yet: see README.md")


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
    raise NotImplementedError("mae_loss is not written yet: see README.md")


def mae_forward(model: nn.Module, imgs: Tensor, mask_ratio: float = 0.75,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One MAE forward pass with the course's ``TinyMAE``: ``imgs -> (pred, mask)``.

    ``patchify`` with ``model.patch_size``, ``model.embed``, :func:`random_masking` (with
    ``generator``), ``model.encode`` on the visible tokens only, then ``L - K`` copies of
    ``model.mask_token`` appended after the encoded tokens, :func:`restore_order`, and
    ``model.decode``. ``pred`` is ``[N, L, p*p*C]`` in patchify layout and original order;
    ``mask`` as from :func:`random_masking`.
    """
    raise NotImplementedError("mae_forward is not written yet: see README.md")


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
    raise NotImplementedError("train_mae is not written yet: see README.md")
