"""The `vit_attention` reference solution itself, against independent computations.

Why it exists: every grader check compares submissions with the reference, so a wrong reference
would grade every student wrong. These tests pin the reference against PyTorch's own attention
(``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` with ``norm_first=True``), against
deliberately naive float64 loops written from the spec's words (rollout, distance), and against
closed forms; they also cover the course helpers the grader and the worker share
(``find_object``, ``files``). No sandbox: the reference is imported by path.
"""

from __future__ import annotations

import importlib.util
import io
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from torchgrade.course.files import read_file_bytes
from torchgrade.course.find_object import PATTERNS, make_find_object

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ref = _load(ROOT / "solutions" / "vit_attention" / "vit_attention.py", "vit_reference_under_test")


def _softmaxed(seed: int, *shape: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2.0 * torch.randn(*shape, generator=g, dtype=torch.float64)).softmax(-1)


# -- the model against PyTorch's own attention -----------------------------------------------------
@pytest.mark.parametrize(("dim", "heads"), [(16, 4), (12, 1), (30, 5)])
def test_attention_equals_torch_multihead_attention(dim: int, heads: int) -> None:
    """qkv laid out [3, heads, head_dim] is exactly nn.MultiheadAttention's in_proj layout."""
    torch.manual_seed(dim)
    mine = ref.MultiHeadSelfAttention(dim, heads).double()
    theirs = nn.MultiheadAttention(dim, heads, batch_first=True).double()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(mine.qkv.weight)
        theirs.in_proj_bias.copy_(mine.qkv.bias)
        theirs.out_proj.weight.copy_(mine.proj.weight)
        theirs.out_proj.bias.copy_(mine.proj.bias)
    x = torch.randn(3, 7, dim, dtype=torch.float64)
    out, attn = mine(x, return_attention=True)
    want_out, want_attn = theirs(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(attn, want_attn)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(mine(x), out)


def test_attention_returned_is_pre_dropout() -> None:
    torch.manual_seed(0)
    m = ref.MultiHeadSelfAttention(8, 2, dropout=0.5).train()
    x = torch.randn(2, 5, 8)
    _, attn = m(x, return_attention=True)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 5))
    _, eval_attn = m.eval()(x, return_attention=True)
    torch.testing.assert_close(attn, eval_attn)


def test_state_dict_names_follow_the_contract() -> None:
    vit = ref.VisionTransformer(8, 4, 3, 5, 16, 2, 2)
    want = {"patch_embed.projection.weight", "patch_embed.projection.bias", "cls_token",
            "pos_embed", "norm.weight", "norm.bias", "head.weight", "head.bias"}
    for i in range(2):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.0", "mlp.3"):
            want |= {f"blocks.{i}.{part}.weight", f"blocks.{i}.{part}.bias"}
    assert set(vit.state_dict()) == want
    assert vit.pos_embed.shape == (1, 5, 16) and vit.cls_token.shape == (1, 1, 16)


def test_vit_equals_a_pre_norm_torch_encoder() -> None:
    """Patches + CLS + positions, nn.TransformerEncoderLayer(norm_first=True, exact GELU),
    final LayerNorm and head on token 0 give the same logits and attention."""
    torch.manual_seed(3)
    vit = ref.VisionTransformer(12, 4, 2, 6, 24, 2, 3, mlp_ratio=1.5).double().eval()
    with torch.no_grad():
        vit.cls_token.normal_()
        vit.pos_embed.normal_()
    x = torch.randn(4, 2, 12, 12, dtype=torch.float64)
    logits, atts = vit(x, return_attention=True)
    h = vit.patch_embed.projection(x).flatten(2).transpose(1, 2)
    h = torch.cat([vit.cls_token.expand(4, 1, 24), h], 1) + vit.pos_embed
    for i, block in enumerate(vit.blocks):
        layer = nn.TransformerEncoderLayer(24, 3, 36, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True).double().eval()
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
            layer.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
            layer.self_attn.out_proj.load_state_dict(block.attn.proj.state_dict())
            layer.linear1.load_state_dict(block.mlp[0].state_dict())
            layer.linear2.load_state_dict(block.mlp[3].state_dict())
            layer.norm1.load_state_dict(block.norm1.state_dict())
            layer.norm2.load_state_dict(block.norm2.state_dict())
        normed = layer.norm1(h)
        _, want_attn = layer.self_attn(normed, normed, normed, average_attn_weights=False)
        torch.testing.assert_close(atts[i], want_attn)
        with torch.no_grad():
            h = layer(h)
    assert layer.norm1.eps == 1e-5
    torch.testing.assert_close(logits, vit.head(vit.norm(h)[:, 0]))


def test_token_zero_is_cls_and_the_logits_depend_on_it() -> None:
    torch.manual_seed(0)
    vit = ref.VisionTransformer(8, 4, 3, 3, 8, 1, 2).eval()
    x = torch.randn(2, 3, 8, 8)
    before = vit(x)
    with torch.no_grad():
        vit.cls_token.add_(torch.randn(1, 1, 8))  # not a constant: LayerNorm removes it
    assert not torch.allclose(before, vit(x))


# -- maps, rollout and distance against naive loops ------------------------------------------------
def test_cls_attention_maps_is_row_zero_without_cls() -> None:
    atts = [_softmaxed(i, 2, 3, 7, 7) for i in range(2)]
    maps = ref.cls_attention_maps(atts, (2, 3), layer=0)
    for b in range(2):
        for h in range(3):
            for r in range(2):
                for c in range(3):
                    assert maps[b, h, r, c] == atts[0][b, h, 0, 1 + r * 3 + c]
    torch.testing.assert_close(ref.cls_attention_maps(atts, (2, 3)),
                               ref.cls_attention_maps(atts, (2, 3), layer=1))


def naive_rollout(atts: list[torch.Tensor], fusion: str, ratio: float) -> list[list[float]]:
    """The spec's words, one batch element and one row at a time, in float64 lists."""
    b_size, heads, n, _ = atts[0].shape
    out = []
    for b in range(b_size):
        r = [[float(i == j) for j in range(n)] for i in range(n)]
        for attn in atts:
            fuse = {"mean": lambda v: sum(v) / len(v), "max": max, "min": min}[fusion]
            w = [[fuse([float(attn[b, h, i, j]) for h in range(heads)]) for j in range(n)]
                 for i in range(n)]
            k = int((n - 1) * ratio)
            for row in w:
                for j in sorted(range(1, n), key=lambda j, row=row: row[j])[:k]:
                    row[j] = 0.0
            a = [[(w[i][j] + (i == j)) / 2 for j in range(n)] for i in range(n)]
            a = [[v / sum(row) for v in row] for row in a]
            r = [[sum(a[i][m] * r[m][j] for m in range(n)) for j in range(n)] for i in range(n)]
        cls = r[0][1:]
        out.append([v / sum(cls) for v in cls])
    return out


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.9])
def test_rollout_agrees_with_naive_loops(fusion: str, ratio: float) -> None:
    atts = [_softmaxed(10 + i, 2, 3, 7, 7) for i in range(3)]
    got = ref.attention_rollout(atts, fusion, ratio, (2, 3))
    assert got.shape == (2, 2, 3)
    want = torch.tensor(naive_rollout(atts, fusion, ratio), dtype=torch.float64)
    torch.testing.assert_close(got.reshape(2, 6), want, rtol=1e-10, atol=1e-12)


def test_rollout_closed_forms() -> None:
    n = 5
    layers = []
    for target in (1, 4):
        a = torch.zeros(1, 2, n, n, dtype=torch.float64)
        a[..., target] = 1.0
        layers.append(a)
    got = ref.attention_rollout(layers)  # square grid inferred: 2 x 2
    want = torch.tensor([[[2 / 3, 0.0], [0.0, 1 / 3]]], dtype=torch.float64)
    torch.testing.assert_close(got, want)
    uniform = [torch.full((1, 1, 10, 10), 0.1, dtype=torch.float64)] * 2
    torch.testing.assert_close(ref.attention_rollout(uniform, "min", 0.0),
                               torch.full((1, 3, 3), 1 / 9, dtype=torch.float64))


def test_rollout_discard_never_zeroes_cls() -> None:
    row = torch.tensor([0.01, 0.09, 0.2, 0.3, 0.4], dtype=torch.float64)
    got = ref.attention_rollout([row.expand(1, 1, 5, 5).contiguous()], discard_ratio=0.5)
    torch.testing.assert_close(got, torch.tensor([[[0.0, 0.0], [3 / 7, 4 / 7]]],
                                                 dtype=torch.float64))


def naive_distance(attn: torch.Tensor, grid: tuple[int, int], patch: int) -> list[float]:
    b_size, heads, n, _ = attn.shape
    gh, gw = grid
    centre = [((i // gw + 0.5) * patch, (i % gw + 0.5) * patch) for i in range(gh * gw)]
    out = []
    for h in range(heads):
        total = 0.0
        for b in range(b_size):
            for q in range(n - 1):
                w = [float(attn[b, h, 1 + q, 1 + k]) for k in range(n - 1)]
                s = sum(w)
                if s > 0:
                    total += sum(wk / s * math.dist(centre[q], centre[k])
                                 for k, wk in enumerate(w))
        out.append(total / (b_size * (n - 1)))
    return out


def test_mean_attention_distance_agrees_with_naive_loops() -> None:
    attn = _softmaxed(5, 2, 3, 13, 13)
    attn[0, 1, 2] = 0.0
    attn[0, 1, 2, 0] = 1.0  # one query attends only to CLS: distance 0
    got = ref.mean_attention_distance(attn, (3, 4), 4)
    torch.testing.assert_close(got, torch.tensor(naive_distance(attn, (3, 4), 4),
                                                 dtype=torch.float64))


def test_mean_attention_distance_closed_forms() -> None:
    n = 10
    eye = torch.eye(n).expand(1, 2, n, n)
    torch.testing.assert_close(ref.mean_attention_distance(eye, (3, 3), 16), torch.zeros(2))
    cells = [(r, c) for r in range(3) for c in range(3)]
    mean_pair = sum(math.dist(p, q) for p in cells for q in cells) / 81 * 16
    uniform = torch.full((1, 2, n, n), 1.0 / n, dtype=torch.float64)
    got = ref.mean_attention_distance(uniform, (3, 3), 16)
    torch.testing.assert_close(got, torch.full((2,), mean_pair, dtype=torch.float64))


# -- the plot --------------------------------------------------------------------------------------
def _png(path: Path):
    from PIL import Image

    with Image.open(io.BytesIO(path.read_bytes()), formats=["PNG"]) as im:
        import numpy as np

        return np.asarray(im.convert("RGB"))


def test_plot_writes_a_png_with_one_panel_per_head(tmp_path: Path) -> None:
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(1))
    out = ref.plot_attention_maps(image, maps, tmp_path / "a.png")
    assert out == tmp_path / "a.png"
    base = _png(out)
    other = maps.clone()
    other[1] = maps[1].flip(0)
    changed = _png(ref.plot_attention_maps(image, other, tmp_path / "b.png")) != base
    cols = changed.any(axis=(0, 2)).nonzero()[0]
    assert cols.size and cols.min() > base.shape[1] // 2  # only the right-hand panel changed
    gray = ref.plot_attention_maps(image[:1], maps, tmp_path / "c.png")
    assert _png(gray).shape == base.shape


# -- validation ------------------------------------------------------------------------------------
ATT = [torch.full((1, 2, 7, 7), 1 / 7)]


@pytest.mark.parametrize(("call", "name"), [
    (lambda: ref.MultiHeadSelfAttention(10, 3), "num_heads"),
    (lambda: ref.MultiHeadSelfAttention(8, 2, dropout=1.0), "dropout"),
    (lambda: ref.MultiHeadSelfAttention(8, 2)(torch.zeros(2, 8)), "x"),
    (lambda: ref.VisionTransformer(10, 4, 3, 5, 16, 1, 2), "patch_size"),
    (lambda: ref.VisionTransformer(8, 4, 3, 5, 16, 0, 2), "depth"),
    (lambda: ref.VisionTransformer(8, 4, 3, 5, 16, 1, 2)(torch.zeros(1, 3, 4, 4)), "x"),
    (lambda: ref.attention_rollout([]), "attentions"),
    (lambda: ref.attention_rollout(ATT, head_fusion="median", grid_size=(2, 3)), "head_fusion"),
    (lambda: ref.attention_rollout(ATT, discard_ratio=1.0, grid_size=(2, 3)), "discard_ratio"),
    (lambda: ref.attention_rollout(ATT, discard_ratio=-0.1, grid_size=(2, 3)), "discard_ratio"),
    (lambda: ref.attention_rollout(ATT), "grid_size"),
    (lambda: ref.cls_attention_maps(ATT, (3, 3)), "grid_size"),
    (lambda: ref.cls_attention_maps(ATT, (2, 3), layer=1), "layer"),
    (lambda: ref.mean_attention_distance(ATT[0][0], (2, 3), 4), "attn"),
    (lambda: ref.mean_attention_distance(ATT[0], (2, 3), 0), "patch_size"),
    (lambda: ref.plot_attention_maps(torch.zeros(8, 8), torch.zeros(1, 2, 2), "x.png"), "image"),
    (lambda: ref.plot_attention_maps(torch.zeros(3, 8, 8), torch.zeros(2, 2), "x.png"), "maps"),
    (lambda: ref.train_vit(nn.Linear(1, 1), torch.zeros(2, 1, 4, 4), torch.zeros(2), epochs=0,
                           batch_size=1, lr=1e-3), "epochs"),
    (lambda: ref.train_vit(nn.Linear(1, 1), torch.zeros(2, 1, 4, 4), torch.zeros(2), epochs=1,
                           batch_size=1, lr=0.0), "lr"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


# -- training and the course helpers ---------------------------------------------------------------
def test_train_vit_is_reproducible_and_returns_eval_mode() -> None:
    data = make_find_object(64, seed=3)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        vit = ref.VisionTransformer(16, 4, 3, 4, 8, 1, 2, mlp_ratio=1.0)
        out = ref.train_vit(vit, data.images, data.labels, epochs=1, batch_size=16, lr=1e-3,
                            augment=True, generator=torch.Generator().manual_seed(5))
        assert out is vit and not vit.training
        weights.append(vit.head.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_find_object_puts_the_pattern_in_the_object_patch() -> None:
    a, b = make_find_object(32, seed=7), make_find_object(32, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (32, 3, 16, 16) and a.images.min() >= 0 and a.images.max() <= 1
    assert set(a.labels.tolist()) <= set(range(len(PATTERNS)))
    # The object's patch differs from the background far more than any other patch.
    patches = a.images.unfold(2, 4, 4).unfold(3, 4, 4)  # [B, 3, 4, 4, 4, 4]
    bg = a.images.median(dim=-1).values.median(dim=-1).values[:, :, None, None, None, None]
    score = (patches - bg).abs().mean(dim=(1, 4, 5)).flatten(1)  # [B, 16]
    assert (score.argmax(1) == a.positions).float().mean() > 0.95


def test_read_file_bytes(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert read_file_bytes(f, 3) == b"abc"
    with pytest.raises(ValueError, match="more than"):
        read_file_bytes(f, 2)
    with pytest.raises(ValueError, match="regular"):
        read_file_bytes(tmp_path, 10)
    with pytest.raises(FileNotFoundError):
        read_file_bytes(tmp_path / "missing", 10)
