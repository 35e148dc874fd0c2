"""A correct vit_attention submission, written differently from the reference."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def _check_list(attentions):
    if not isinstance(attentions, list | tuple) or not attentions:
        raise ValueError("attentions must be a non-empty list of [B, H, N, N] tensors")
    for a in attentions:
        if not torch.is_tensor(a) or a.ndim != 4:
            raise ValueError("attentions must hold 4-D tensors")
    return list(attentions)


def _grid_of(grid_size, n):
    if grid_size is None:
        s = int(round(math.sqrt(n)))
        if s * s != n:
            raise ValueError("grid_size is needed: the patches are not a square")
        return s, s
    if isinstance(grid_size, int):
        grid_size = (grid_size, grid_size)
    gh, gw = grid_size
    if gh * gw != n:
        raise ValueError(f"grid_size {grid_size} does not match {n} patches")
    return gh, gw


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads != 0:
            raise ValueError("num_heads must divide embed_dim")
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        self.h = num_heads
        self.d = embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, embed_dim * 3, bias=True)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.drop_attn = nn.Dropout(dropout)
        self.drop_out = nn.Dropout(dropout)

    def forward(self, x, return_attention=False):
        if x.ndim != 3:
            raise ValueError("x must be [B, N, D]")
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.d).unbind(dim=2)  # [B, N, H, d] each
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, N, d]
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(self.d)
        weights = F.softmax(scores, dim=-1)
        mixed = torch.einsum("bhqk,bhkd->bhqd", self.drop_attn(weights), v)
        out = self.drop_out(self.proj(mixed.transpose(1, 2).reshape(b, n, c)))
        if return_attention:
            return out, weights
        return out


class _Patches(nn.Module):
    def __init__(self, patch_size, in_channels, embed_dim):
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class _Layer(nn.Module):
    def __init__(self, dim, heads, ratio, p):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = MultiHeadSelfAttention(dim, heads, p)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        hidden = int(dim * ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="none"),
                                 nn.Dropout(p), nn.Linear(hidden, dim), nn.Dropout(p))


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch_size, in_channels, num_classes, embed_dim, depth,
                 num_heads, mlp_ratio=4.0, dropout=0.0):
        super().__init__()
        if patch_size < 1 or img_size % patch_size:
            raise ValueError("patch_size must divide img_size")
        if depth < 1:
            raise ValueError("depth must be >= 1")
        if embed_dim % num_heads:
            raise ValueError("num_heads must divide embed_dim")
        tokens = (img_size // patch_size) ** 2 + 1
        self.patch_embed = _Patches(patch_size, in_channels, embed_dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, embed_dim) * 0.02)
        self.blocks = nn.ModuleList([_Layer(embed_dim, num_heads, mlp_ratio, dropout)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.drop = nn.Dropout(dropout)
        self.shape = (in_channels, img_size, img_size)

    def forward(self, x, return_attention=False):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError("x has the wrong shape")
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        h = self.drop(torch.cat((cls, tokens), 1) + self.pos_embed)
        maps = []
        for blk in self.blocks:
            a, w = blk.attn(blk.norm1(h), return_attention=True)
            h = h + a
            h = h + blk.mlp(blk.norm2(h))
            maps.append(w)
        logits = self.head(self.norm(h)[:, 0, :])
        return (logits, maps) if return_attention else logits


def cls_attention_maps(attentions, grid_size, layer=-1):
    atts = _check_list(attentions)
    if not -len(atts) <= layer < len(atts):
        raise ValueError("layer is out of range")
    a = atts[layer]
    gh, gw = _grid_of(grid_size, a.shape[-1] - 1)
    return a[:, :, 0, 1:].unflatten(-1, (gh, gw))


def attention_rollout(attentions, head_fusion="mean", discard_ratio=0.0, grid_size=None):
    atts = _check_list(attentions)
    fuse = {"mean": lambda t: t.mean(1), "max": lambda t: t.max(1).values,
            "min": lambda t: t.min(1).values}
    if head_fusion not in fuse:
        raise ValueError("head_fusion must be mean, max or min")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError("discard_ratio must be in [0, 1)")
    n = atts[0].shape[-1]
    gh, gw = _grid_of(grid_size, n - 1)
    k = int((n - 1) * discard_ratio)
    eye = torch.eye(n, dtype=atts[0].dtype, device=atts[0].device)
    result = None
    for a in atts:
        w = fuse[head_fusion](a).clone()
        if k:
            drop = w[..., 1:].argsort(dim=-1)[..., :k] + 1
            w.scatter_(-1, drop, 0.0)
        m = 0.5 * (w + eye)
        m = m / m.sum(-1, keepdim=True)
        result = m if result is None else torch.bmm(m, result)
    row = result[:, 0, 1:]
    return (row / row.sum(-1, keepdim=True)).view(-1, gh, gw)


def mean_attention_distance(attn, grid_size, patch_size):
    if not torch.is_tensor(attn) or attn.ndim != 4:
        raise ValueError("attn must be [B, H, N, N]")
    if patch_size < 1:
        raise ValueError("patch_size must be >= 1")
    gh, gw = _grid_of(grid_size, attn.shape[-1] - 1)
    ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).to(attn) * patch_size
    d = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1).sqrt()
    w = attn[:, :, 1:, 1:]
    s = w.sum(-1, keepdim=True)
    w = torch.where(s > 0, w / s.clamp_min(1e-30), torch.zeros_like(w))
    return (w * d).sum(-1).mean(-1).mean(0)


def plot_attention_maps(image, maps, path):
    from matplotlib.figure import Figure

    if image.ndim != 3:
        raise ValueError("image must be [C, H, W]")
    if maps.ndim != 3:
        raise ValueError("maps must be [heads, gh, gw]")
    pic = image.detach().float().cpu()
    pic = (pic - pic.min()) / (pic.max() - pic.min() + 1e-8)
    pic = pic.permute(1, 2, 0).squeeze(-1).numpy()
    up = F.interpolate(maps.detach().float().cpu()[None], size=image.shape[-2:],
                       mode="nearest")[0]
    fig = Figure(figsize=(3 * len(up), 3))
    axes = fig.subplots(1, len(up), squeeze=False)[0]
    for i, ax in enumerate(axes):
        ax.imshow(pic, cmap="gray")
        ax.imshow(up[i].numpy(), cmap="viridis", alpha=0.4)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(str(path))
    return Path(path)


def train_vit(model, images, labels, *, epochs, batch_size, lr, weight_decay=0.05,
              augment=False, generator=None):
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if not lr > 0:
        raise ValueError("lr must be > 0")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(images)
    total = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            j = perm[i:i + batch_size]
            x = images[j]
            if augment:
                if torch.rand(1, generator=generator).item() < 0.5:
                    x = x.flip(-1)
            opt.zero_grad()
            F.cross_entropy(model(x), labels[j]).backward()
            opt.step()
            sched.step()
    model.eval()
    return model
