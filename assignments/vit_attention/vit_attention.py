"""Assignment `vit_attention`: a Vision Transformer and what its attention looks at.

Fill in the pieces below (read ``README.md`` beside this file first). Keep the names,
signatures and parameter names exactly as they are: the grader loads the reference's weights
into your model (``model.load_state_dict(...)``) and compares logits, attention maps, rollout
and distances value for value [model.names]. Check your work with ``torchgrade check
vit_attention``.

The ids in square brackets name the README's rules (the checks name the ones they pin).
Results come back on the input's device [conv.device]; bad arguments raise ValueError naming
the argument [conv.names-argument].

Papers: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
at Scale" (2020); Abnar & Zuidema, "Quantifying Attention Flow in Transformers" (2020).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention that can return its attention weights.

    - ``self.qkv = nn.Linear(embed_dim, 3 * embed_dim)`` (with bias); its output, reshaped to
      ``[B, N, 3, num_heads, head_dim]``, holds all queries, then all keys, then all values
      [attn.qkv-layout].
    - ``self.proj = nn.Linear(embed_dim, embed_dim)``.
    - ``attn = softmax(q @ k^T / sqrt(head_dim))`` over the keys (the last axis)
      [attn.softmax].
    - ``forward(x [B, N, D], return_attention=False)`` returns ``out [B, N, D]``, or
      ``(out, attn [B, H, N, N])`` where ``attn`` is taken after the softmax and BEFORE the
      attention dropout (its rows are non-negative and sum to 1) [attn.pre-dropout].

    Raises:
        ValueError: ``num_heads`` does not divide ``embed_dim`` [attn.heads-divide];
            ``dropout`` is outside [0, 1) [args.dropout]; ``x`` is not a 3-D tensor
            ``[B, N, D]`` [attn.x-shape].
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        raise NotImplementedError("MultiHeadSelfAttention.__init__: build qkv, proj and dropout")

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError("MultiHeadSelfAttention.forward: scaled dot-product attention")


class VisionTransformer(nn.Module):
    """The pre-norm ViT of the course text, with these parameter names (state_dict keys):

    ``patch_embed.projection`` (Conv2d, kernel = stride = patch_size, flattened row-major)
    [model.patch-embed], ``cls_token`` [1, 1, D], ``pos_embed`` [1, N, D] added to all N
    tokens [model.tokens], ``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv``,
    ``blocks.{i}.attn.proj``, ``blocks.{i}.norm2``, ``blocks.{i}.mlp.0`` and
    ``blocks.{i}.mlp.3`` (mlp = Linear, GELU, Dropout, Linear, Dropout), ``norm``, ``head``.

    Token 0 is CLS; N = 1 + (img_size // patch_size) ** 2. Each block computes
    ``x = x + attn(norm1(x)); x = x + mlp(norm2(x))``; LayerNorms use eps 1e-5, GELU is the
    exact one [model.blocks]. The logits are ``head(norm(x)[:, 0])`` [model.head]. After
    ``model.double()`` everything is float64 [model.dtype].

    ``forward(x [B, C, H, W], return_attention=False)`` returns logits ``[B, num_classes]``, or
    ``(logits, attentions)`` with ``attentions`` a list of ``depth`` tensors ``[B, H, N, N]``,
    layer 1 first [model.attentions].

    Raises:
        ValueError: ``patch_size`` does not divide ``img_size`` [vit.patch-divide];
            ``num_heads`` does not divide ``embed_dim`` [attn.heads-divide]; ``depth`` < 1
            [vit.depth]; ``dropout`` is outside [0, 1) [args.dropout]; ``x`` is not
            ``[B, in_channels, img_size, img_size]`` [vit.x-shape].
    """

    def __init__(self, img_size: int, patch_size: int, in_channels: int, num_classes: int,
                 embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        raise NotImplementedError("VisionTransformer.__init__: patch embedding, CLS token, "
                                  "positions, blocks, norm and head")

    def forward(self, x: Tensor, return_attention: bool = False
                ) -> Tensor | tuple[Tensor, list[Tensor]]:
        raise NotImplementedError("VisionTransformer.forward: patches -> tokens -> blocks -> "
                                  "head on CLS")


# -- attention maps -------------------------------------------------------------------------------
def cls_attention_maps(attentions: list[Tensor], grid_size: tuple[int, int] | int | None,
                       layer: int = -1) -> Tensor:
    """Row 0 (the CLS query) of ``attentions[layer]`` with the CLS column dropped, reshaped to
    the patch grid: ``[B, H, gh, gw]`` [cls.maps]. ``grid_size`` is ``(gh, gw)``, an int
    (square) or None (square, inferred from N - 1) [grid.forms].

    Raises:
        ValueError: ``attentions`` is empty [maps.empty]; ``grid_size`` does not hold the
            N - 1 patches [grid.fit]; ``layer`` is out of range [cls.layer].
    """
    raise NotImplementedError("cls_attention_maps: CLS row, CLS column dropped, on the grid")


def attention_rollout(attentions: list[Tensor], head_fusion: str = "mean",
                      discard_ratio: float = 0.0,
                      grid_size: tuple[int, int] | int | None = None) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): ``[B, gh, gw]``, summing to 1 per image.

    Per layer: fuse heads (``"mean"`` | ``"max"`` | ``"min"``) into W [B, N, N]
    [rollout.fuse]; if ``discard_ratio > 0``, in every row zero the
    ``int((N-1) * discard_ratio)`` smallest of the N-1 patch columns (the CLS column is not
    ranked and never zeroed) [rollout.discard]; ``A = (W + I) / 2``; renormalise rows
    [rollout.residual]. Then ``R = A_L @ ... @ A_1`` and return ``R[:, 0, 1:]`` renormalised,
    on the grid [rollout.order]. ``grid_size`` as in :func:`cls_attention_maps` [grid.forms].

    Raises:
        ValueError: ``head_fusion`` is not mean, max or min [rollout.fusion-name];
            ``discard_ratio`` is outside [0, 1) [rollout.discard-range]; ``attentions`` is
            empty [maps.empty]; ``grid_size`` does not hold the N - 1 patches [grid.fit].
    """
    raise NotImplementedError("attention_rollout: fuse, discard, add identity, multiply")


def mean_attention_distance(attn: Tensor, grid_size: tuple[int, int] | int | None,
                            patch_size: int) -> Tensor:
    """Mean attention distance per head, in pixels (Dosovitskiy et al., Fig. 7): ``[H]``.

    Patch queries and patch keys only (drop the CLS row and column); renormalise each query's
    weights to sum to 1; its distance is the weighted mean Euclidean distance between patch
    centres, in pixels; average over queries and batch [distance.pixels]. A query whose
    weights sum to 0 counts as 0 [distance.cls-only]. ``grid_size`` as in
    :func:`cls_attention_maps` [grid.forms].

    Raises:
        ValueError: ``attn`` is not ``[B, H, N, N]`` [distance.attn-shape]; ``grid_size``
            does not hold the N - 1 patches [grid.fit]; ``patch_size`` < 1
            [distance.patch-size].
    """
    raise NotImplementedError("mean_attention_distance: weighted patch-centre distances")


def plot_attention_maps(image: Tensor, maps: Tensor, path: str | Path) -> Path:
    """Write a PNG at ``path`` and return its path [plot.png]: one panel per head, the head's
    map (``maps[h]``, ``[gh, gw]``) upsampled to the image's size and overlaid on ``image``
    (``[C, H, W]``, C = 1 or 3) [plot.panels]. Use matplotlib without a display
    (``from matplotlib.figure import Figure``).

    Raises:
        ValueError: ``image`` or ``maps`` is not a 3-D tensor [plot.ranks].
    """
    raise NotImplementedError("plot_attention_maps: one overlaid panel per head, saved as PNG")


def train_vit(model: nn.Module, images: Tensor, labels: Tensor, *, epochs: int, batch_size: int,
              lr: float, weight_decay: float = 0.05, augment: bool = False,
              generator: torch.Generator | None = None) -> nn.Module:
    """Train ``model`` with cross-entropy and AdamW (``weight_decay``).

    Each epoch: ``torch.randperm(n, generator=generator)``, then mini-batches of
    ``batch_size``; a cosine learning-rate schedule from ``lr`` to 0 is recommended
    [train.loop]. Returns the model, trained, in eval mode [train.returns]. With
    ``augment=True`` (the CIFAR-10 lab only) each batch gets a random 4-pixel-padded crop and a
    random horizontal flip drawn from ``generator`` [train.augment]. The grader trains a small
    ViT on find-the-object images [train.find-object] (on a GPU: ViT-Tiny on CIFAR-10,
    [train.cifar10]).

    Raises:
        ValueError: ``epochs`` or ``batch_size`` < 1 [train.positive-ints]; ``lr`` is not a
            finite number > 0 [train.lr].
    """
    raise NotImplementedError("train_vit: the training loop")
