# BEGIN SOLUTION
"""Reference solution for `vit_attention`: a pre-norm Vision Transformer and its attention maps.

Why it exists: graders compare submissions with these functions value for value (the attention
module, the model's logits and attentions, CLS maps, rollout, mean attention distance), check
the plot by what it draws, and run the training loop on a synthetic "find the object" task. It
follows ``spec/assignments.md`` section 2 exactly. Where the course text differs it is wrong:
its attention module defaults to ``dropout=0.1`` and never returns the attention, its blocks
sit in an ``nn.Sequential`` (no way to collect per-layer maps), and the second chapter's model
uses ``nn.TransformerEncoderLayer`` (post-norm by default, fused attention, other parameter
names).

Papers: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
at Scale" (ICLR 2021, arXiv 2020); Abnar & Zuidema, "Quantifying Attention Flow in
Transformers" (ACL 2020).
"""
# END SOLUTION
# BEGIN STUB
# """Assignment `vit_attention`: a Vision Transformer and what its attention looks at.
#
# Fill in the pieces below (read ``README.md`` beside this file first). Keep the names,
# signatures and parameter names exactly as they are: the grader loads the reference's weights
# into your model (``model.load_state_dict(...)``) and compares logits, attention maps, rollout
# and distances value for value [model.names]. Check your work with ``torchgrade check
# vit_attention``.
#
# The ids in square brackets name the README's rules (the checks name the ones they pin).
# Results come back on the input's device [conv.device]; bad arguments raise ValueError naming
# the argument [conv.names-argument].
#
# Papers: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
# at Scale" (2020); Abnar & Zuidema, "Quantifying Attention Flow in Transformers" (2020).
# """
# END STUB

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# BEGIN SOLUTION
HEAD_FUSIONS = ("mean", "max", "min")


# -- validation helpers ---------------------------------------------------------------------------
def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _ratio(value: object, name: str, *, closed_right: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1]), else ValueError naming ``name``."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if isinstance(value, bool) or not (0.0 <= x < 1.0 or (closed_right and x == 1.0)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return x


def _grid(grid_size: object, n_patches: int, name: str = "grid_size") -> tuple[int, int]:
    """``(gh, gw)`` from an int, a pair or None (square), checked against ``n_patches``."""
    if grid_size is None:
        side = math.isqrt(n_patches)
        if side * side != n_patches or n_patches == 0:
            raise ValueError(f"{name} is None but {n_patches} patches are not a square grid")
        return side, side
    if isinstance(grid_size, int) and not isinstance(grid_size, bool):
        grid_size = (grid_size, grid_size)
    try:
        gh, gw = (int(v) for v in grid_size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (gh, gw), got {grid_size!r}") from None
    if gh < 1 or gw < 1 or gh * gw != n_patches:
        raise ValueError(f"{name} {(gh, gw)} does not hold the {n_patches} patch tokens")
    return gh, gw


def _attention_list(attentions: object) -> list[Tensor]:
    """The per-layer attentions as a list of equal-shaped ``[B, H, N, N]`` tensors."""
    if isinstance(attentions, Tensor) or not isinstance(attentions, list | tuple):
        raise ValueError("attentions must be a list of [B, H, N, N] tensors, one per layer")
    if len(attentions) == 0:
        raise ValueError("attentions must not be empty")
    first = attentions[0]
    for a in attentions:
        if not isinstance(a, Tensor) or a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError("attentions must hold [B, H, N, N] tensors")
        if a.shape != first.shape:
            raise ValueError("attentions must all have the same shape")
    if first.shape[-1] < 2:
        raise ValueError("attentions need N >= 2 tokens (CLS + at least one patch)")
    return list(attentions)


# -- the model ------------------------------------------------------------------------------------
class PatchEmbedding(nn.Module):
    """Split an image into P x P patches and project each to ``embed_dim`` (ViT eq. 1).

    A convolution with kernel = stride = P is a linear map of each flattened patch.
    """

    def __init__(self, img_size: int, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.projection = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size,
                                    stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.projection(x)  # [B, D, H/P, W/P]
        return x.flatten(2).transpose(1, 2)  # [B, num_patches, D], row-major over the grid
# END SOLUTION


class MultiHeadSelfAttention(nn.Module):
    # BEGIN SOLUTION
    """Multi-head self-attention (Vaswani et al. 2017) as used in ViT, returning its weights.

    ``qkv`` is one ``Linear(D, 3D)`` with bias whose output is laid out ``[3, heads, head_dim]``
    (all queries, then all keys, then all values). ``attn = softmax(q k^T / sqrt(head_dim))``
    over the keys is returned post-softmax and pre-dropout: rows are non-negative and sum to 1.
    """
    # END SOLUTION
    # BEGIN STUB
    # """Multi-head self-attention that can return its attention weights.
    #
    # - ``self.qkv = nn.Linear(embed_dim, 3 * embed_dim)`` (with bias); its output, reshaped to
    #   ``[B, N, 3, num_heads, head_dim]``, holds all queries, then all keys, then all values
    #   [attn.qkv-layout].
    # - ``self.proj = nn.Linear(embed_dim, embed_dim)``.
    # - ``attn = softmax(q @ k^T / sqrt(head_dim))`` over the keys (the last axis)
    #   [attn.softmax].
    # - ``forward(x [B, N, D], return_attention=False)`` returns ``out [B, N, D]``, or
    #   ``(out, attn [B, H, N, N])`` where ``attn`` is taken after the softmax and BEFORE the
    #   attention dropout (its rows are non-negative and sum to 1) [attn.pre-dropout].
    #
    # Raises:
    #     ValueError: ``num_heads`` does not divide ``embed_dim`` [attn.heads-divide];
    #         ``dropout`` is outside [0, 1) [args.dropout]; ``x`` is not a 3-D tensor
    #         ``[B, N, D]`` [attn.x-shape].
    # """
    # END STUB

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        # BEGIN SOLUTION
        _positive_int(embed_dim, "embed_dim")
        _positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide embed_dim ({embed_dim})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attn_dropout = nn.Dropout(_ratio(dropout, "dropout"))
        self.proj_dropout = nn.Dropout(dropout)
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("MultiHeadSelfAttention.__init__: build qkv, proj and dropout")
        # END STUB

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        # BEGIN SOLUTION
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"x must be [B, N, {self.embed_dim}], got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        B, N, D = x.shape
        H, hd = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, N, 3, H, hd)  # [B, N, 3, H, hd]
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, hd]
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)  # [B, H, N, N]
        out = self.attn_dropout(attn) @ v  # [B, H, N, hd]
        out = out.transpose(1, 2).reshape(B, N, D)  # [B, N, D]
        out = self.proj_dropout(self.proj(out))
        return (out, attn) if return_attention else out
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("MultiHeadSelfAttention.forward: scaled dot-product attention")
        # END STUB


# BEGIN SOLUTION
class Block(nn.Module):
    """Pre-norm Transformer encoder block (ViT eqs. 2-3): x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadSelfAttention(embed_dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        # Indices 0 and 3 hold the weights: mlp.0 and mlp.3 in the state_dict.
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, embed_dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, attn = self.attn(self.norm1(x), return_attention=True)
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return x, attn
# END SOLUTION


class VisionTransformer(nn.Module):
    # BEGIN SOLUTION
    """ViT (Dosovitskiy et al. 2020): patches + CLS token + learned positions, pre-norm blocks,
    a final LayerNorm and a linear head on the CLS token. Token 0 is CLS, N = 1 + patches."""
    # END SOLUTION
    # BEGIN STUB
    # """The pre-norm ViT of the course text, with these parameter names (state_dict keys):
    #
    # ``patch_embed.projection`` (Conv2d, kernel = stride = patch_size, flattened row-major)
    # [model.patch-embed], ``cls_token`` [1, 1, D], ``pos_embed`` [1, N, D] added to all N
    # tokens [model.tokens], ``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv``,
    # ``blocks.{i}.attn.proj``, ``blocks.{i}.norm2``, ``blocks.{i}.mlp.0`` and
    # ``blocks.{i}.mlp.3`` (mlp = Linear, GELU, Dropout, Linear, Dropout), ``norm``, ``head``.
    #
    # Token 0 is CLS; N = 1 + (img_size // patch_size) ** 2. Each block computes
    # ``x = x + attn(norm1(x)); x = x + mlp(norm2(x))``; LayerNorms use eps 1e-5, GELU is the
    # exact one [model.blocks]. The logits are ``head(norm(x)[:, 0])`` [model.head]. After
    # ``model.double()`` everything is float64 [model.dtype].
    #
    # ``forward(x [B, C, H, W], return_attention=False)`` returns logits ``[B, num_classes]``, or
    # ``(logits, attentions)`` with ``attentions`` a list of ``depth`` tensors ``[B, H, N, N]``,
    # layer 1 first [model.attentions].
    #
    # Raises:
    #     ValueError: ``patch_size`` does not divide ``img_size`` [vit.patch-divide];
    #         ``num_heads`` does not divide ``embed_dim`` [attn.heads-divide]; ``depth`` < 1
    #         [vit.depth]; ``dropout`` is outside [0, 1) [args.dropout]; ``x`` is not
    #         ``[B, in_channels, img_size, img_size]`` [vit.x-shape].
    # """
    # END STUB

    def __init__(self, img_size: int, patch_size: int, in_channels: int, num_classes: int,
                 embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        # BEGIN SOLUTION
        for value, name in ((img_size, "img_size"), (patch_size, "patch_size"),
                            (in_channels, "in_channels"), (num_classes, "num_classes"),
                            (embed_dim, "embed_dim"), (depth, "depth"),
                            (num_heads, "num_heads")):
            _positive_int(value, name)
        if img_size % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide img_size ({img_size})")
        if not (isinstance(mlp_ratio, int | float) and mlp_ratio > 0):
            raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio!r}")
        _ratio(dropout, "dropout")
        self.img_size, self.patch_size, self.in_channels = img_size, patch_size, in_channels
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbedding(img_size, patch_size, in_channels, embed_dim)
        n_tokens = self.patch_embed.num_patches + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, embed_dim))
        self.pos_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("VisionTransformer.__init__: patch embedding, CLS token, "
        #                           "positions, blocks, norm and head")
        # END STUB

    def forward(self, x: Tensor, return_attention: bool = False
                ) -> Tensor | tuple[Tensor, list[Tensor]]:
        # BEGIN SOLUTION
        want = (self.in_channels, self.img_size, self.img_size)
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"x must be [B, {want[0]}, {want[1]}, {want[2]}], got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        B = x.shape[0]
        x = self.patch_embed(x)  # [B, P, D]
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # [B, N, D], CLS first
        x = self.pos_dropout(x + self.pos_embed)
        attentions = []
        for block in self.blocks:
            x, attn = block(x)
            attentions.append(attn)  # [B, H, N, N]
        logits = self.head(self.norm(x)[:, 0])  # [B, num_classes]
        return (logits, attentions) if return_attention else logits
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("VisionTransformer.forward: patches -> tokens -> blocks -> "
        #                           "head on CLS")
        # END STUB


# -- attention maps -------------------------------------------------------------------------------
def cls_attention_maps(attentions: list[Tensor], grid_size: tuple[int, int] | int | None,
                       layer: int = -1) -> Tensor:
    # BEGIN SOLUTION
    """How much CLS attends to each patch in one layer, per head, on the patch grid.

    Row 0 (the CLS query) of ``attentions[layer]``, CLS column dropped: ``[B, H, gh, gw]``.
    """
    atts = _attention_list(attentions)
    if isinstance(layer, bool) or not isinstance(layer, int) or not -len(atts) <= layer < len(
            atts):
        raise ValueError(f"layer must be an int in [-{len(atts)}, {len(atts)}), got {layer!r}")
    attn = atts[layer]
    B, H, N, _ = attn.shape
    gh, gw = _grid(grid_size, N - 1)
    return attn[:, :, 0, 1:].reshape(B, H, gh, gw)  # [B, H, gh, gw]
    # END SOLUTION
    # BEGIN STUB
    # """Row 0 (the CLS query) of ``attentions[layer]`` with the CLS column dropped, reshaped to
    # the patch grid: ``[B, H, gh, gw]`` [cls.maps]. ``grid_size`` is ``(gh, gw)``, an int
    # (square) or None (square, inferred from N - 1) [grid.forms].
    #
    # Raises:
    #     ValueError: ``attentions`` is empty [maps.empty]; ``grid_size`` does not hold the
    #         N - 1 patches [grid.fit]; ``layer`` is out of range [cls.layer].
    # """
    # raise NotImplementedError("cls_attention_maps: CLS row, CLS column dropped, on the grid")
    # END STUB


def attention_rollout(attentions: list[Tensor], head_fusion: str = "mean",
                      discard_ratio: float = 0.0,
                      grid_size: tuple[int, int] | int | None = None) -> Tensor:
    # BEGIN SOLUTION
    """Attention rollout (Abnar & Zuidema 2020, section 3): how much the CLS output depends on
    each input patch, following attention through all layers with the residual path.

    1. Fuse the heads of each layer (mean, max or min over H) into ``W`` [B, N, N].
    2. If ``discard_ratio > 0``: in every row, zero the ``int((N-1) * discard_ratio)``
       smallest of the N-1 patch columns; the CLS column is never ranked nor zeroed.
    3. ``A = (W + I) / 2`` for the residual connection, rows renormalised to sum to 1.
    4. ``R = A_L ... A_1`` (layer 1 is applied first).
    5. Return row 0 of R over the patch columns, renormalised to sum to 1: ``[B, gh, gw]``.
    """
    atts = _attention_list(attentions)
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    ratio = _ratio(discard_ratio, "discard_ratio")
    B, _, N, _ = atts[0].shape
    gh, gw = _grid(grid_size, N - 1)
    n_drop = int((N - 1) * ratio)
    eye = torch.eye(N, dtype=atts[0].dtype, device=atts[0].device)
    rollout = eye.expand(B, N, N)
    for attn in atts:
        if head_fusion == "mean":
            w = attn.mean(dim=1)  # [B, N, N]
        elif head_fusion == "max":
            w = attn.amax(dim=1)
        else:
            w = attn.amin(dim=1)
        if n_drop > 0:
            patches = w[:, :, 1:]  # [B, N, N-1], the CLS column left out of the ranking
            idx = patches.topk(n_drop, dim=-1, largest=False).indices  # [B, N, n_drop]
            patches = patches.scatter(-1, idx, 0.0)
            w = torch.cat([w[:, :, :1], patches], dim=-1)  # [B, N, N]
        a = (w + eye) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout  # R = A_l @ R: the later layer on the left
    cls = rollout[:, 0, 1:]  # [B, N-1]
    cls = cls / cls.sum(dim=-1, keepdim=True)
    return cls.reshape(B, gh, gw)  # [B, gh, gw]
    # END SOLUTION
    # BEGIN STUB
    # """Attention rollout (Abnar & Zuidema 2020): ``[B, gh, gw]``, summing to 1 per image.
    #
    # Per layer: fuse heads (``"mean"`` | ``"max"`` | ``"min"``) into W [B, N, N]
    # [rollout.fuse]; if ``discard_ratio > 0``, in every row zero the
    # ``int((N-1) * discard_ratio)`` smallest of the N-1 patch columns (the CLS column is not
    # ranked and never zeroed) [rollout.discard]; ``A = (W + I) / 2``; renormalise rows
    # [rollout.residual]. Then ``R = A_L @ ... @ A_1`` and return ``R[:, 0, 1:]`` renormalised,
    # on the grid [rollout.order]. ``grid_size`` as in :func:`cls_attention_maps` [grid.forms].
    #
    # Raises:
    #     ValueError: ``head_fusion`` is not mean, max or min [rollout.fusion-name];
    #         ``discard_ratio`` is outside [0, 1) [rollout.discard-range]; ``attentions`` is
    #         empty [maps.empty]; ``grid_size`` does not hold the N - 1 patches [grid.fit].
    # """
    # raise NotImplementedError("attention_rollout: fuse, discard, add identity, multiply")
    # END STUB


# BEGIN SOLUTION
def patch_centres(grid_size: tuple[int, int], patch_size: int, *, device=None,
                  dtype=torch.float32) -> Tensor:
    """Pixel coordinates (row, col) of the patch centres, row-major: ``[gh * gw, 2]``."""
    gh, gw = grid_size
    rows = (torch.arange(gh, device=device, dtype=dtype) + 0.5) * patch_size
    cols = (torch.arange(gw, device=device, dtype=dtype) + 0.5) * patch_size
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
# END SOLUTION


def mean_attention_distance(attn: Tensor, grid_size: tuple[int, int] | int | None,
                            patch_size: int) -> Tensor:
    # BEGIN SOLUTION
    """Mean attention distance per head in pixels (Dosovitskiy et al. 2020, Fig. 7 and D.7).

    Over patch queries and patch keys only (CLS row and column dropped), each query's weights
    are renormalised to sum to 1; its distance is the weighted mean Euclidean distance between
    its patch centre and the key patch centres. A query whose patch weights sum to 0 counts as
    distance 0. Averaged over queries and batch: ``[H]``.
    """
    if not isinstance(attn, Tensor) or attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError("attn must be a [B, H, N, N] tensor")
    if attn.shape[-1] < 2 or attn.shape[0] < 1:
        raise ValueError("attn needs a batch and N >= 2 tokens (CLS + patches)")
    _positive_int(patch_size, "patch_size")
    gh, gw = _grid(grid_size, attn.shape[-1] - 1)
    centres = patch_centres((gh, gw), patch_size, device=attn.device, dtype=attn.dtype)
    dist = torch.cdist(centres, centres)  # [P, P] pixels
    w = attn[:, :, 1:, 1:]  # [B, H, P, P]
    total = w.sum(dim=-1)  # [B, H, P]
    weighted = (w * dist).sum(dim=-1)  # [B, H, P]
    per_query = torch.where(total > 0, weighted / torch.where(total > 0, total, 1.0), 0.0)
    return per_query.mean(dim=(0, 2))  # [H]
    # END SOLUTION
    # BEGIN STUB
    # """Mean attention distance per head, in pixels (Dosovitskiy et al., Fig. 7): ``[H]``.
    #
    # Patch queries and patch keys only (drop the CLS row and column); renormalise each query's
    # weights to sum to 1; its distance is the weighted mean Euclidean distance between patch
    # centres, in pixels; average over queries and batch [distance.pixels]. A query whose
    # weights sum to 0 counts as 0 [distance.cls-only]. ``grid_size`` as in
    # :func:`cls_attention_maps` [grid.forms].
    #
    # Raises:
    #     ValueError: ``attn`` is not ``[B, H, N, N]`` [distance.attn-shape]; ``grid_size``
    #         does not hold the N - 1 patches [grid.fit]; ``patch_size`` < 1
    #         [distance.patch-size].
    # """
    # raise NotImplementedError("mean_attention_distance: weighted patch-centre distances")
    # END STUB


def plot_attention_maps(image: Tensor, maps: Tensor, path: str | Path) -> Path:
    # BEGIN SOLUTION
    """Save one panel per head: the head's map upsampled to the image and overlaid on it.

    ``image`` is ``[C, H, W]`` (C = 1 or 3, any range: it is min-max scaled for display),
    ``maps`` is ``[heads, gh, gw]``. Each map is scaled to [0, 1] on its own and drawn with a
    colour map at 50 % opacity over the image. Writes a PNG and returns its path.
    """
    from matplotlib.figure import Figure  # Agg canvas, no display, no global state

    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError("image must be a [C, H, W] tensor with C = 1 or 3")
    if not isinstance(maps, Tensor) or maps.dim() != 3 or maps.shape[0] < 1:
        raise ValueError("maps must be a [heads, gh, gw] tensor")
    path = Path(path)
    img = image.detach().to("cpu", torch.float32)
    img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
    img_np = img.permute(1, 2, 0).numpy()  # [H, W, C]
    size = img.shape[-2:]
    heads = maps.shape[0]
    up = F.interpolate(maps.detach().to("cpu", torch.float32)[:, None], size=tuple(size),
                       mode="bilinear", align_corners=False)[:, 0]  # [heads, H, W]
    fig = Figure(figsize=(2.0 * heads, 2.2), dpi=80)
    for h in range(heads):
        ax = fig.add_subplot(1, heads, h + 1)
        m = up[h]
        m = (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)
        ax.imshow(img_np[..., 0] if img_np.shape[-1] == 1 else img_np,
                  cmap="gray" if img_np.shape[-1] == 1 else None)
        ax.imshow(m.numpy(), cmap="jet", alpha=0.5)
        ax.set_title(f"head {h}")
        ax.axis("off")
    fig.savefig(path, format="png")
    return path
    # END SOLUTION
    # BEGIN STUB
    # """Write a PNG at ``path`` and return its path [plot.png]: one panel per head, the head's
    # map (``maps[h]``, ``[gh, gw]``) upsampled to the image's size and overlaid on ``image``
    # (``[C, H, W]``, C = 1 or 3) [plot.panels]. Use matplotlib without a display
    # (``from matplotlib.figure import Figure``).
    #
    # Raises:
    #     ValueError: ``image`` or ``maps`` is not a 3-D tensor [plot.ranks].
    # """
    # raise NotImplementedError("plot_attention_maps: one overlaid panel per head, saved as PNG")
    # END STUB


# BEGIN SOLUTION
# -- training -------------------------------------------------------------------------------------
def _augment(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """CIFAR-style augmentation: 4-pixel reflect-padded random crop and horizontal flip."""
    B, _, H, W = x.shape
    dev = generator.device if generator is not None else x.device
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy = torch.randint(0, 9, (B,), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 9, (B,), generator=generator, device=dev).to(x.device)
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    b = torch.arange(B, device=x.device)[:, None, None, None]
    c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[b, c, rows, cols]  # [B, C, H, W]
    flip = torch.rand(B, generator=generator, device=dev).to(x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
# END SOLUTION


def train_vit(model: nn.Module, images: Tensor, labels: Tensor, *, epochs: int, batch_size: int,
              lr: float, weight_decay: float = 0.05, augment: bool = False,
              generator: torch.Generator | None = None) -> nn.Module:
    # BEGIN SOLUTION
    """Train ``model`` for classification with cross-entropy and AdamW; return it in eval mode.

    Each epoch shuffles with ``torch.randperm(n, generator=generator)`` and walks mini-batches
    of ``batch_size`` (the last one may be smaller). The learning rate follows a cosine from
    ``lr`` to 0 over all steps. With ``augment`` every batch gets a random crop (reflect pad 4)
    and a horizontal flip, drawn from ``generator`` (the CIFAR-10 lab; off for the CPU check).
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a floating [B, C, H, W] tensor")
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError("labels must be a [B] tensor of class indices matching images")
    _positive_int(epochs, "epochs")
    _positive_int(batch_size, "batch_size")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    n = images.shape[0]
    labels = labels.long()
    steps = epochs * math.ceil(n / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    perm_device = generator.device if generator is not None else "cpu"
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator, device=perm_device).to(images.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x = images[idx]
            if augment:
                x = _augment(x, generator)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()
    # END SOLUTION
    # BEGIN STUB
    # """Train ``model`` with cross-entropy and AdamW (``weight_decay``).
    #
    # Each epoch: ``torch.randperm(n, generator=generator)``, then mini-batches of
    # ``batch_size``; a cosine learning-rate schedule from ``lr`` to 0 is recommended
    # [train.loop]. Returns the model, trained, in eval mode [train.returns]. With
    # ``augment=True`` (the CIFAR-10 lab only) each batch gets a random 4-pixel-padded crop and a
    # random horizontal flip drawn from ``generator`` [train.augment]. The grader trains a small
    # ViT on find-the-object images [train.find-object] (on a GPU: ViT-Tiny on CIFAR-10,
    # [train.cifar10]).
    #
    # Raises:
    #     ValueError: ``epochs`` or ``batch_size`` < 1 [train.positive-ints]; ``lr`` is not a
    #         finite number > 0 [train.lr].
    # """
    # raise NotImplementedError("train_vit: the training loop")
    # END STUB
