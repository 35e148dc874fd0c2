"""A tiny Masked Autoencoder and its data, for the mae_masking training check.

Why it exists: the training check trains the same network for the reference and for every
submission, so the reconstruction errors compare the students' masking, loss and training
loop, not their architectures. The network is built in the sandboxed worker (through
``student.construct("torchgrade.course.mae:TinyMAE", ...)``) and, with the trained weights
sent back as a plain ``state_dict``, in the trusted grader, which evaluates it.

:class:`TinyMAE` holds the *learnable* parts of MAE (He et al. 2021, ``models_mae.py``) and
none of what the assignment asks for: it never patchifies, masks, un-shuffles or computes a
loss. Its three stages are called by the student's ``mae_forward``::

    tokens = model.embed(patchify(imgs, p))               # [N, L, D], positions added
    visible, mask, ids_restore = random_masking(tokens, ratio, generator)
    latent = model.encode(visible)                         # [N, K, Dd]
    full = cat(latent, model.mask_token repeated L - K)    # [N, L, Dd], shuffled order
    pred = model.decode(restore_order(full, ids_restore))  # [N, L, p*p*C]

The encoder is a small pre-norm Transformer on the visible tokens only; its attention is
written out (no ``nn.MultiheadAttention`` fast path, which changes numerics between train and
eval mode) and handles an empty sequence of visible tokens. The decoder, which always sees all
L positions, uses MLP-Mixer blocks instead of attention: at this size and a CPU budget of a
few hundred steps, a one-block attention decoder reached only the per-position mean patch in
twice the time (benchmarks/mae_masking_calibration.md). Positional
embeddings are the fixed 2-D sine-cosine tables of the official code. Only torch is imported,
since the student worker imports this module too; :func:`digits` imports scikit-learn lazily
and runs in the grader only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

INIT_STD = 0.02  # the official code's std for the mask token and linear weights


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def sincos_pos_embed(dim: int, grid_size: tuple[int, int]) -> Tensor:
    """Fixed 2-D sine-cosine positional embedding ``[h*w, dim]`` (MAE's ``get_2d_sincos``).

    Half the channels encode the row, half the column; patches are numbered row by row, as
    ``patchify`` orders them. ``dim`` must be a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    h, w = grid_size
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # [D/4]
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                                torch.arange(w, dtype=torch.float64), indexing="ij")

    def encode(pos: Tensor) -> Tensor:
        angle = pos.reshape(-1, 1) * omega  # [h*w, D/4]
        return torch.cat([angle.sin(), angle.cos()], dim=1)  # [h*w, D/2]

    return torch.cat([encode(rows), encode(cols)], dim=1).float()  # [h*w, D]


class Block(nn.Module):
    """A pre-norm Transformer block: multi-head self-attention and a GELU MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def attention(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)  # [3, N, H, T, d]
        q, k, v = qkv[0], qkv[1], qkv[2]  # [N, H, T, d] each
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)  # [N, H, T, T]
        out = attn.softmax(dim=-1) @ v  # [N, H, T, d]
        return self.proj(out.transpose(1, 2).reshape(n, t, d))  # [N, T, D]

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixerBlock(nn.Module):
    """An MLP-Mixer block (Tolstikhin et al. 2021): an MLP across the L tokens, then one
    across the channels, both pre-norm and residual. The decoder sees all L positions, so
    mixing tokens with a learned ``[L, L]`` map is cheap, and it learns from the visible
    patches far faster than attention does at this size (see the module docstring)."""

    def __init__(self, dim: int, num_tokens: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        hidden_tokens = int(num_tokens * mlp_ratio)
        self.token_mlp = nn.Sequential(nn.Linear(num_tokens, hidden_tokens), nn.GELU(),
                                       nn.Linear(hidden_tokens, num_tokens))
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)  # mix tokens
        return x + self.mlp(self.norm2(x))  # mix channels


class TinyMAE(nn.Module):
    """MAE's encoder and decoder at toy size (defaults: 8x8 one-channel digits, 2x2 patches).

    - ``embed(patches [N, L, p*p*C]) -> [N, L, D]``: linear patch embedding plus the fixed
      positional embedding (added before masking, so visible tokens keep their position);
    - ``encode(visible [N, K, D]) -> [N, K, Dd]``: ``depth`` blocks on the visible tokens only,
      a LayerNorm and the projection to the decoder's width (``K = 0`` is allowed);
    - ``mask_token``: a learnable ``[1, 1, Dd]`` parameter standing for each removed patch;
    - ``decode(tokens [N, L, Dd]) -> [N, L, p*p*C]``: the decoder's positional embedding, its
      Mixer blocks, a LayerNorm and a linear head predicting every patch's pixels (patchify
      layout).

    Attributes ``patch_size``, ``channels``, ``grid_size`` and ``num_patches`` describe the
    images the model expects.
    """

    def __init__(self, patch_size: int = 2, channels: int = 1,
                 grid_size: tuple[int, int] | list[int] = (4, 4), embed_dim: int = 32,
                 depth: int = 2, num_heads: int = 4, decoder_dim: int = 32,
                 decoder_depth: int = 1, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        for name, value in (("patch_size", patch_size), ("channels", channels),
                            ("embed_dim", embed_dim), ("depth", depth),
                            ("num_heads", num_heads), ("decoder_dim", decoder_dim),
                            ("decoder_depth", decoder_depth)):
            _positive_int(value, name)
        if len(grid_size) != 2:
            raise ValueError(f"grid_size must be (h, w), got {grid_size!r}")
        gh, gw = (_positive_int(int(g), "grid_size") for g in grid_size)
        self.patch_size = patch_size
        self.channels = channels
        self.grid_size = (gh, gw)
        self.num_patches = gh * gw
        patch_dim = patch_size * patch_size * channels

        self.patch_embed = nn.Linear(patch_dim, embed_dim)
        self.register_buffer("pos_embed", sincos_pos_embed(embed_dim, (gh, gw))[None])
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)

        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed(decoder_dim, (gh, gw))[None])
        self.decoder_blocks = nn.ModuleList(
            MixerBlock(decoder_dim, gh * gw, mlp_ratio) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, patch_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # As models_mae.py: xavier-uniform linear weights, zero biases, N(0, 0.02) mask token.
        nn.init.normal_(self.mask_token, std=INIT_STD)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def _check(self, x: Tensor, name: str, length: int | None, dim: int) -> None:
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != dim or (
                length is not None and x.shape[1] != length):
            want = f"[N, {length if length is not None else 'K'}, {dim}]"
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be {want}, got {got}")

    def embed(self, patches: Tensor) -> Tensor:
        self._check(patches, "patches", self.num_patches, self.decoder_pred.out_features)
        return self.patch_embed(patches) + self.pos_embed  # [N, L, D]

    def encode(self, visible: Tensor) -> Tensor:
        self._check(visible, "visible", None, self.patch_embed.out_features)
        x = visible
        for block in self.blocks:
            x = block(x)  # [N, K, D]
        return self.decoder_embed(self.norm(x))  # [N, K, Dd]

    def decode(self, tokens: Tensor) -> Tensor:
        self._check(tokens, "tokens", self.num_patches, self.mask_token.shape[-1])
        x = tokens + self.decoder_pos_embed  # [N, L, Dd]
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))  # [N, L, p*p*C]


class RecordingMAE(TinyMAE):
    """A :class:`TinyMAE` that shows how it was trained, for the public check of
    ``train_mae``: ``seen`` holds every batch of patches ``embed`` was given, in order (which
    images the generator drew, step after step), and ``probe`` is a parameter whose gradient is
    exactly zero, so that only the optimiser's weight decay moves it (AdamW with
    ``weight_decay=0.05`` scales it by ``1 - lr * 0.05`` each step; Adam leaves it alone)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.probe = nn.Parameter(torch.ones(4))
        self.seen: list[Tensor] = []

    def embed(self, patches: Tensor) -> Tensor:
        self.seen.append(patches.detach().clone())
        return super().embed(patches)

    def decode(self, tokens: Tensor) -> Tensor:
        return super().decode(tokens) + 0.0 * self.probe.sum()  # a zero gradient, not None


def digits(seed: int, n_test: int = 397) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits (no download) as ``[N, 1, 8, 8]`` float32 in [0, 1].

    The 1797 images are shuffled with ``seed`` and split into (train, test), the last
    ``n_test`` images held out. Grader only (imports scikit-learn).
    """
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images).float().div(16.0)[:, None]  # [1797,1,8,8]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    images = images[order]
    if not 0 < n_test < len(images):
        raise ValueError(f"n_test must be in (0, {len(images)}), got {n_test}")
    return images[:-n_test].contiguous(), images[-n_test:].contiguous()
