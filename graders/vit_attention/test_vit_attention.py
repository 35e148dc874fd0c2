"""Grader of the vit_attention assignment (attention maps of a ViT), contract §2 of the spec.

Every check names the mistake it is designed to catch (``catches=``). Public checks compare
with fixtures built from the reference (fixtures/public.safetensors), loading the reference's
weights into the student's model; hidden checks may call the reference live, on the grader's
own copies of the inputs, or compare with closed forms computed here independently. The plot
is written inside the sandbox: the worker sends its bytes back (torchgrade.course.files) and
the grader decodes them as untrusted data, with size limits.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import PurePath

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchgrade.checks import (
    check,
    expect_answer,
    expect_close,
    expect_nonconstant,
    expect_raises,
    expect_shape,
    expect_tensor,
    fail,
    measured,
)

QKV_LAYOUT = ("a qkv output split as [heads, 3, head_dim] (or q, k, v taken from the wrong "
              "slices) instead of [3, heads, head_dim]")
ATTN_VALUES = ("attention taken before the softmax or after the dropout, a softmax over the "
               "wrong axis, or a missing 1/sqrt(head_dim) scale")

MAX_PNG_BYTES = 8 * 1024 * 1024
MAX_PNG_PIXELS = 4_000_000


def _state(case: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("sd."): v for k, v in case.items() if k.startswith("sd.")}


def _load_into(model, state: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into the student's remote model, failing clearly on other names."""
    names = sorted(model.state_dict().keys())
    if names != sorted(state):
        missing = sorted(set(state) - set(names))[:6]
        extra = sorted(set(names) - set(state))[:6]
        fail(f"{what} has other parameter names than the contract.",
             expected=f"the names of the spec (missing here: {missing})",
             got=f"extra names {extra}",
             hint="patch_embed.projection, cls_token, pos_embed, blocks.{i}.norm1, "
             "blocks.{i}.attn.qkv, blocks.{i}.attn.proj, blocks.{i}.norm2, blocks.{i}.mlp.0, "
             "blocks.{i}.mlp.3, norm, head")
    model.load_state_dict({k: v.clone() for k, v in state.items()})


def _pair(out, what: str):
    if not (isinstance(out, tuple | list) and len(out) == 2):
        fail(f"{what} with return_attention=True must return a pair.",
             expected="(output, attention)", got=type(out).__name__)
    return out


def _rows_are_distributions(attn, what: str) -> None:
    if float(attn.min()) < -1e-6:
        fail(f"{what} has negative weights.", expected="post-softmax weights >= 0",
             got=f"min {float(attn.min()):.3g}", hint="return the attention after the softmax")
    sums = attn.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        fail(f"{what}: rows do not sum to 1.", expected="each query row sums to 1",
             got=f"row sums in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]",
             hint="softmax over the keys (the last axis), before any dropout")


# -- public checks: fixtures built from the reference -------------------------------------------
@check(points=7, kind="value", visibility="public", catches=f"{QKV_LAYOUT}; {ATTN_VALUES}",
       rules=("attn.qkv-layout", "attn.softmax", "attn.pre-dropout", "model.names"))
def test_attention_module_public(student, fixture_case):
    """MultiHeadSelfAttention(16, 4) with the reference's weights gives the same output and the
    same post-softmax attention."""
    case = fixture_case("mhsa")
    mhsa = student.MultiHeadSelfAttention(16, 4)
    _load_into(mhsa, _state(case), "MultiHeadSelfAttention(16, 4)")
    mhsa.eval()
    out, attn = _pair(student.call(mhsa, case["x"], return_attention=True, _no_grad=True),
                      "MultiHeadSelfAttention")
    hint = "q, k, v = qkv(x).reshape(B, N, 3, H, head_dim).permute(2, 0, 3, 1, 4)"
    expect_tensor(attn, case["attn"], what="the attention [B, H, N, N]", rtol=1e-4, atol=1e-6,
                  hint=hint)
    expect_tensor(out, case["out"], what="the output [B, N, D]", rtol=1e-4, atol=1e-6,
                  hint=hint)
    plain = student.call(mhsa, case["x"], _no_grad=True)
    expect_tensor(plain, case["out"], what="the output with return_attention=False",
                  rtol=1e-4, atol=1e-6)


@check(points=9, kind="value", visibility="public",
       catches="a post-norm block, a missing final LayerNorm, CLS not at token 0, positions "
       "not added to CLS, or other parameter names",
       rules=("model.patch-embed", "model.tokens", "model.blocks", "model.head",
              "model.attentions", "model.names"))
def test_vit_forward_public(student, fixture_case):
    """VisionTransformer(8, 2, 3, 5, 16, 2, 2, mlp_ratio=2.0) with the reference's weights gives
    the same logits and the same attention in every layer."""
    case = fixture_case("vit")
    vit = student.VisionTransformer(8, 2, 3, 5, 16, 2, 2, mlp_ratio=2.0)
    _load_into(vit, _state(case), "VisionTransformer")
    vit.eval()
    logits, atts = _pair(student.call(vit, case["images"], return_attention=True,
                                      _no_grad=True), "VisionTransformer")
    if not isinstance(atts, list | tuple) or len(atts) != 2:
        fail("the attentions must be a list with one tensor per layer.",
             expected="a list of depth=2 tensors", got=type(atts).__name__)
    for i, attn in enumerate(atts):
        expect_tensor(attn, case[f"attn.{i}"], what=f"the attention of layer {i + 1}",
                      rtol=1e-4, atol=1e-6, hint="layer 1 first; token 0 is CLS")
    expect_tensor(logits, case["logits"], what="the logits", rtol=1e-4, atol=1e-5,
                  hint="pre-norm: x + attn(norm1(x)), x + mlp(norm2(x)); head(norm(x)[:, 0])")
    plain = student.call(vit, case["images"], _no_grad=True)
    expect_tensor(plain, case["logits"], what="the logits with return_attention=False",
                  rtol=1e-4, atol=1e-5)


@check(points=5, kind="value", visibility="public",
       catches="the CLS column kept, a column instead of row 0, the wrong layer, or a "
       "column-major reshape onto the grid", rules=("cls.maps",))
def test_cls_attention_maps_public(student, fixture_case):
    """cls_attention_maps on a 2 x 3 grid, last and first layer."""
    case = fixture_case("maps")
    atts = [case[f"attn.{i}"] for i in range(3)]
    expect_tensor(student.cls_attention_maps(atts, (2, 3)), case["cls.last"],
                  what="cls_attention_maps(attentions, (2, 3))",
                  hint="attentions[layer][:, :, 0, 1:].reshape(B, H, gh, gw)")
    expect_tensor(student.cls_attention_maps(atts, (2, 3), layer=0), case["cls.first"],
                  what="cls_attention_maps(attentions, (2, 3), layer=0)")


@check(points=7, kind="value", visibility="public",
       catches="rollout without the residual (W + I) / 2, multiplied in the wrong order, the "
       "CLS column ranked or zeroed by the discard, or a missing renormalisation",
       rules=("rollout.fuse", "rollout.discard", "rollout.residual", "rollout.order"))
def test_attention_rollout_public(student, fixture_case):
    """attention_rollout on a 2 x 3 grid: mean, max and min fusion, with and without discard."""
    case = fixture_case("maps")
    atts = [case[f"attn.{i}"] for i in range(3)]
    for key, fusion, ratio in (("rollout.mean.0.0", "mean", 0.0), ("rollout.max.0.5", "max", 0.5),
                               ("rollout.min.0.3", "min", 0.3)):
        expect_tensor(student.attention_rollout(atts, head_fusion=fusion, discard_ratio=ratio,
                                                grid_size=(2, 3)), case[key],
                      what=f"attention_rollout(head_fusion={fusion!r}, discard_ratio={ratio})",
                      rtol=1e-5, atol=1e-7,
                      hint="A = (W + I) / 2 renormalised, R = A_L @ ... @ A_1 (R = A @ R per "
                      "layer), then R[:, 0, 1:] renormalised")


def uniform_distance(gh: int, gw: int, patch: int, skip: int = 0) -> float:
    """Mean Euclidean distance between two patch centres drawn uniformly (with repetition), in
    pixels: what uniform attention gives. Computed pair by pair, independently of any code.
    The first ``skip`` queries (row-major) count as distance 0 (they attend only to CLS)."""
    cells = [(r, c) for r in range(gh) for c in range(gw)]
    total = sum(math.hypot(patch * (r1 - r2), patch * (c1 - c2))
                for r1, c1 in cells[skip:] for r2, c2 in cells)
    return total / len(cells) ** 2


@check(points=4, kind="value", visibility="public",
       catches="distances in patches instead of pixels, the CLS row or column left in, or "
       "weights not renormalised over the patch keys", rules=("distance.pixels",))
def test_mean_attention_distance_public(student, fixture_case):
    """Identity attention gives 0; uniform attention gives the mean pairwise distance between
    patch centres (in pixels); a random attention matches the reference."""
    h, (gh, gw), patch = 3, (3, 4), 4
    n = 1 + gh * gw
    eye = torch.eye(n).expand(2, h, n, n).contiguous()
    expect_tensor(student.mean_attention_distance(eye, (gh, gw), patch), torch.zeros(h),
                  what="mean_attention_distance of identity attention")
    uniform = torch.full((2, h, n, n), 1.0 / n)
    want = uniform_distance(gh, gw, patch)
    got = student.mean_attention_distance(uniform, (gh, gw), patch)
    expect_shape(got, (h,), what="mean_attention_distance(...)")
    for k in range(h):
        expect_close(got[k], want, what=f"uniform attention, head {k} (grid 3 x 4, patch 4)",
                     rtol=1e-5, atol=1e-5,
                     hint="the mean over all pairs of patch centres, (0.5 + i) * patch_size "
                     "pixels apart; drop the CLS row and column and renormalise")
    case = fixture_case("distance")
    expect_tensor(student.mean_attention_distance(case["attn"], (3, 4), 4), case["expected"],
                  what="mean_attention_distance of a random attention", rtol=1e-5, atol=1e-5)


# -- the plot: rendered in the sandbox, decoded here ---------------------------------------------
def _render(student, image: torch.Tensor, maps: torch.Tensor, name: str) -> np.ndarray:
    """Have the student plot, fetch the PNG's bytes from the worker and decode them as RGB."""
    from PIL import Image

    path = student.plot_attention_maps(image, maps, f"/tmp/{name}.png")
    if not isinstance(path, PurePath | str):
        fail("plot_attention_maps must return the path of the PNG.", expected="a Path",
             got=type(path).__name__)
    data = student.construct("torchgrade.course.files:read_file_bytes", os.fspath(path),
                             MAX_PNG_BYTES)
    if not isinstance(data, bytes) or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        fail("plot_attention_maps did not write a PNG file.", expected="a PNG (\\x89PNG...)",
             got=repr(data[:8]) if isinstance(data, bytes) else type(data).__name__,
             hint="fig.savefig(path, format='png')")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            w, h = im.size
            if w * h > MAX_PNG_PIXELS:
                fail("the PNG is far too large.", expected=f"<= {MAX_PNG_PIXELS} pixels",
                     got=f"{w} x {h}")
            return np.asarray(im.convert("RGB"), dtype=np.int16)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        fail("the PNG cannot be decoded.", expected="a valid PNG", got=f"{exc}"[:200])
    raise AssertionError("unreachable")


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (top, left, bottom, right) of the pixels that differ, or None."""
    diff = (a != b).any(axis=-1)
    if not diff.any():
        return None
    rows, cols = np.nonzero(diff.any(axis=1))[0], np.nonzero(diff.any(axis=0))[0]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _overlap(p: tuple[int, ...], q: tuple[int, ...]) -> float:
    """Intersection of two boxes over the smaller one's area."""
    h = max(0, min(p[2], q[2]) - max(p[0], q[0]))
    w = max(0, min(p[3], q[3]) - max(p[1], q[1]))
    smaller = min((p[2] - p[0]) * (p[3] - p[1]), (q[2] - q[0]) * (q[3] - q[1]))
    return h * w / max(smaller, 1)


@check(points=5, kind="value", visibility="public", timeout=120,
       catches="no PNG written, a blank figure, all heads in one panel (or a mean map), a "
       "head left out, or maps drawn beside the image instead of over it",
       rules=("plot.png", "plot.panels"))
def test_plot_attention_maps_public(student):
    """plot_attention_maps writes a PNG with one panel per head, each overlaid on the image.

    What "one panel per head" means here: rotating one head's map by 180 degrees (same values,
    so the colour scale cannot change) changes the picture, and the changed regions of the
    different heads do not overlap; inverting the image changes the picture inside every head's
    region."""
    g = torch.Generator().manual_seed(5)
    heads = 3
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    image = torch.stack([yy, xx, 0.5 * (yy + xx)]) + 0.05 * torch.rand(3, 32, 32, generator=g)
    maps = torch.rand(heads, 4, 4, generator=g)
    base = _render(student, image, maps, "vit_maps_base")
    if len(np.unique(base.reshape(-1, 3), axis=0)) < 16:
        fail("the figure is (nearly) blank.", expected="an image with the maps drawn on it",
             got=f"{len(np.unique(base.reshape(-1, 3), axis=0))} distinct colours")
    boxes = []
    for h in range(heads):
        other = maps.clone()
        other[h] = maps[h].flip(0).flip(1)
        img = _render(student, image, other, f"vit_maps_head{h}")
        box = _changed_box(base, img) if img.shape == base.shape else None
        if box is None:
            fail(f"changing head {h}'s map does not change the figure.",
                 expected="one panel per head, drawing that head's map", got="the same image",
                 hint="draw maps[h] in panel h for every head")
        boxes.append(box)
    for i in range(heads):
        for j in range(i + 1, heads):
            if _overlap(boxes[i], boxes[j]) > 0.2:
                fail(f"heads {i} and {j} are drawn in the same place.",
                     expected=f"{heads} separate panels, one per head",
                     got="overlapping regions change with both heads",
                     hint="one subplot per head (e.g. fig.subplots(1, heads)); no averaged map")
    inverted = _render(student, 1.0 - image, maps, "vit_maps_inverted")
    diff = (inverted != base).any(axis=-1) if inverted.shape == base.shape else None
    for h, (t, l, b, r) in enumerate(boxes):
        if diff is None or diff[t:b, l:r].mean() < 0.05:
            fail(f"head {h}'s panel does not show the image.",
                 expected="each head's map overlaid on the image (alpha blending)",
                 got="the panel does not change when the image does",
                 hint="ax.imshow(image); ax.imshow(upsampled map, alpha=0.5) in the same axes")


@check(points=4, kind="robustness", visibility="public",
       catches="missing argument validation (heads not dividing the width, patches not tiling "
       "the image, unknown head fusion, discard ratio out of range, a grid that does not fit)",
       rules=("conv.names-argument", "attn.heads-divide", "vit.patch-divide",
              "rollout.fusion-name", "rollout.discard-range", "grid.fit"))
def test_bad_arguments_public(student):
    """Bad arguments raise ValueError naming the argument."""
    with expect_raises("ValueError", what="MultiHeadSelfAttention(10, 3)", mentions="num_heads"):
        student.MultiHeadSelfAttention(10, 3)
    with expect_raises("ValueError", what="VisionTransformer(img_size=10, patch_size=4, ...)",
                       mentions="patch_size"):
        student.VisionTransformer(10, 4, 3, 5, 16, 1, 2)
    atts = [torch.full((1, 2, 7, 7), 1 / 7)]
    with expect_raises("ValueError", what="attention_rollout(head_fusion='median')",
                       mentions="head_fusion"):
        student.attention_rollout(atts, head_fusion="median", grid_size=(2, 3))
    with expect_raises("ValueError", what="attention_rollout(discard_ratio=1.5)",
                       mentions="discard_ratio"):
        student.attention_rollout(atts, discard_ratio=1.5, grid_size=(2, 3))
    with expect_raises("ValueError", what="cls_attention_maps with grid (3, 3) for 6 patches",
                       mentions="grid_size"):
        student.cls_attention_maps(atts, (3, 3))


@check(points=2, kind="value", visibility="public", catches="a train_vit that does not train "
       "(no optimizer step), returns another model, or leaves it in train mode",
       rules=("train.loop", "train.returns"))
def test_train_vit_public(student):
    """train_vit for one epoch on 16 random images with a small VisionTransformer: the model
    it was given comes back, in eval mode, with changed weights and finite logits."""
    g = torch.Generator().manual_seed(7)
    model = student.VisionTransformer(8, 4, 3, 2, 8, 1, 2, mlp_ratio=2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = torch.rand(16, 3, 8, 8, generator=g), torch.arange(16) % 2
    trained = student.train_vit(model, images, labels, epochs=1, batch_size=8, lr=1e-2,
                                generator=torch.Generator().manual_seed(8))
    if getattr(getattr(trained, "_ref", None), "id", None) != model._ref.id:
        fail("train_vit must return the model it was given, trained.", expected="the same "
             "VisionTransformer", got=getattr(trained, "type_name", type(trained).__name__))
    if model.training is not False:
        fail("train_vit left the model in train mode.", expected="model.eval() before "
             "returning it", got="train mode")
    after = model.state_dict()
    if all(torch.equal(before[k], after[k]) for k in before):
        fail("train_vit did not change the model's weights.", expected="AdamW steps on the "
             "cross-entropy of every mini-batch", got="the weights it was given",
             hint="opt.zero_grad(); loss.backward(); opt.step() for each mini-batch")
    expect_answer(student.call(model, images, _no_grad=True), what="the trained model's logits",
                  shape=(16, 2))


# -- hidden checks: the reference, live, and closed forms ----------------------------------------
@check(points=6, kind="value", catches="attention returned after the dropout (zeros, rows "
       f"scaled by 1/(1-p)); {QKV_LAYOUT}",
       rules=("attn.qkv-layout", "attn.softmax", "attn.pre-dropout"))
def test_attention_matches_reference_hidden(student, reference):
    """Other widths and head counts match the reference; with dropout active (train mode) the
    returned attention is still the pre-dropout softmax."""
    for dim, heads, n, seed in ((24, 3, 6, 1), (8, 1, 3, 2), (30, 5, 9, 3)):
        torch.manual_seed(seed)
        ref = reference.MultiHeadSelfAttention(dim, heads, dropout=0.5)
        x = torch.randn(3, n, dim, generator=torch.Generator().manual_seed(seed))
        ref.eval()
        with torch.no_grad():
            want_out, want_attn = ref(x.clone(), return_attention=True)
        mhsa = student.MultiHeadSelfAttention(dim, heads, dropout=0.5)
        _load_into(mhsa, ref.state_dict(), f"MultiHeadSelfAttention({dim}, {heads})")
        mhsa.train()
        _, attn = _pair(student.call(mhsa, x, return_attention=True, _no_grad=True),
                        "MultiHeadSelfAttention")
        expect_tensor(attn, want_attn, what=f"attention in train mode (D={dim}, H={heads})",
                      rtol=1e-4, atol=1e-6)
        mhsa.eval()
        out, attn = _pair(student.call(mhsa, x, return_attention=True, _no_grad=True),
                          "MultiHeadSelfAttention")
        expect_tensor(out, want_out, what=f"output in eval mode (D={dim}, H={heads})",
                      rtol=1e-4, atol=1e-5)


@check(points=6, kind="value", catches="a post-norm block, LayerNorm eps other than 1e-5, "
       "tanh GELU, mlp_ratio ignored, a model that only works in float32 or for 3 channels",
       rules=("model.blocks", "model.head", "model.tokens", "model.dtype", "attn.pre-dropout"))
def test_vit_matches_reference_hidden(student, reference):
    """Other image sizes, channels, depths and MLP ratios match the reference, in float64
    (so that even the tanh approximation of GELU shows)."""
    configs = ((12, 4, 1, 3, 24, 3, 3, 1.5), (6, 3, 2, 7, 12, 1, 4, 4.0),
               (16, 4, 3, 10, 32, 2, 2, 2.0), (8, 4, 3, 4, 16, 1, 2, 4.0))
    for k, (img, patch, ch, classes, dim, depth, heads, ratio) in enumerate(configs):
        torch.manual_seed(100 + k)
        ref = reference.VisionTransformer(img, patch, ch, classes, dim, depth, heads,
                                          mlp_ratio=ratio).double().eval()
        g = torch.Generator().manual_seed(k)
        # The last config feeds tokens of variance ~1e-7 to the first LayerNorm, where its
        # eps (1e-5) dominates: another eps gives other logits.
        scale = 1e-3 if k == 3 else 1.0
        with torch.no_grad():
            ref.cls_token.copy_(scale * torch.randn(ref.cls_token.shape, generator=g))
            ref.pos_embed.copy_(scale * torch.randn(ref.pos_embed.shape, generator=g))
            if k == 3:
                ref.patch_embed.projection.bias.zero_()
        x = scale * torch.randn(2, ch, img, img, generator=g, dtype=torch.float64)
        with torch.no_grad():
            want_logits, want_atts = ref(x.clone(), return_attention=True)
        vit = student.VisionTransformer(img, patch, ch, classes, dim, depth, heads,
                                        mlp_ratio=ratio)
        vit.double()
        _load_into(vit, ref.state_dict(), "VisionTransformer")
        vit.eval()
        logits, atts = _pair(student.call(vit, x, return_attention=True, _no_grad=True),
                             "VisionTransformer")
        if not isinstance(atts, list | tuple) or len(atts) != depth:
            fail("one attention tensor per layer is expected.", expected=f"{depth} tensors",
                 got=str(len(atts)) if isinstance(atts, list | tuple) else type(atts).__name__)
        for i, (a, w) in enumerate(zip(atts, want_atts, strict=True)):
            expect_tensor(a, w, what=f"config {k}: attention of layer {i + 1}", rtol=1e-7,
                          atol=1e-10, dtype=torch.float64)
        expect_tensor(logits, want_logits, what=f"config {k}: logits", rtol=1e-7, atol=1e-9,
                      dtype=torch.float64,
                      hint="exact GELU (nn.GELU()), LayerNorm eps 1e-5, pre-norm blocks")


def _random_attentions(seed: int, depth: int, b: int, h: int, n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(2.0 * torch.randn(b, h, n, n, generator=g, dtype=torch.float64)).softmax(-1)
            for _ in range(depth)]


@check(points=6, kind="value", catches="rollout with the wrong fusion, the wrong discard rule "
       "(per matrix instead of per row, the CLS column ranked), or the wrong product order",
       rules=("rollout.fuse", "rollout.discard", "rollout.residual", "rollout.order"))
def test_rollout_matches_reference_hidden(student, reference):
    """Every head fusion and several discard ratios, square and non-square grids, float64."""
    for seed, (depth, b, h, grid) in enumerate(((2, 3, 4, (3, 3)), (4, 1, 2, (3, 2)),
                                                 (1, 2, 3, (1, 5)))):
        n = 1 + grid[0] * grid[1]
        atts = _random_attentions(seed, depth, b, h, n)
        for fusion in ("mean", "max", "min"):
            for ratio in (0.0, 0.25, 0.9):
                size = None if grid[0] == grid[1] else grid
                want = reference.attention_rollout([a.clone() for a in atts], fusion, ratio,
                                                   size)
                got = student.attention_rollout(atts, head_fusion=fusion,
                                                discard_ratio=ratio, grid_size=size)
                expect_tensor(got, want, what=f"rollout ({fusion}, discard {ratio}, grid "
                              f"{grid}, depth {depth})", rtol=1e-7, atol=1e-10)


def _one_hot_layer(n: int, target: int) -> torch.Tensor:
    """Every token attends only to token ``target``: ``[1, 2, n, n]``."""
    a = torch.zeros(1, 2, n, n, dtype=torch.float64)
    a[..., target] = 1.0
    return a


@check(points=5, kind="value", catches="rollout in the wrong order (A_1 ... A_L), without the "
       "residual identity, without the final renormalisation, or ranking the CLS column",
       rules=("rollout.order", "rollout.residual", "rollout.discard"))
def test_rollout_closed_forms(student):
    """Closed forms: layer 1 attending to patch a, layer 2 to patch b gives a: 2/3, b: 1/3;
    uniform attention gives a uniform rollout; the discard rule never zeroes CLS."""
    n, a, b = 5, 1, 4  # grid 2 x 2: tokens 1..4 are patches
    got = student.attention_rollout([_one_hot_layer(n, a), _one_hot_layer(n, b)])
    want = torch.zeros(1, 2, 2, dtype=torch.float64)
    want.view(1, 4)[0, a - 1], want.view(1, 4)[0, b - 1] = 2 / 3, 1 / 3
    expect_tensor(got, want, what="rollout of 'all attend to a' then 'all attend to b'",
                  rtol=1e-9, atol=1e-12,
                  hint="R = A_2 @ A_1 with A = (W + I) / 2: the earlier layer is applied first")
    uniform = [torch.full((2, 3, 10, 10), 0.1, dtype=torch.float64) for _ in range(3)]
    expect_tensor(student.attention_rollout(uniform, head_fusion="max"),
                  torch.full((2, 3, 3), 1 / 9, dtype=torch.float64),
                  what="rollout of uniform attention", rtol=1e-9, atol=1e-12)
    # One layer, every row [CLS .01, .09, .2, .3, .4]: discard 0.5 zeroes the two smallest
    # *patch* columns (.09, .2), never CLS; the CLS row over patches is then [0, 0, 3/7, 4/7].
    row = torch.tensor([0.01, 0.09, 0.2, 0.3, 0.4], dtype=torch.float64)
    attn = row.expand(1, 1, 5, 5).contiguous()
    want = torch.tensor([[[0.0, 0.0], [3 / 7, 4 / 7]]], dtype=torch.float64)
    expect_tensor(student.attention_rollout([attn], discard_ratio=0.5), want,
                  what="rollout with discard_ratio=0.5 when CLS has the smallest weight",
                  rtol=1e-9, atol=1e-12,
                  hint="rank only the N - 1 patch columns; the CLS column is never zeroed")


@check(points=4, kind="value", catches="distance in patches instead of pixels, a query whose "
       "patch weights sum to 0 giving NaN or being dropped from the mean, or CLS included",
       rules=("distance.pixels", "distance.cls-only"))
def test_mean_attention_distance_hidden(student, reference):
    """Non-square grids against the reference and the closed form; queries that attend only to
    CLS count as distance 0."""
    for seed, (grid, patch) in enumerate((((2, 5), 3), ((4, 4), 16), ((1, 3), 2))):
        n = 1 + grid[0] * grid[1]
        attn = _random_attentions(10 + seed, 1, 2, 4, n)[0]
        expect_tensor(student.mean_attention_distance(attn, grid, patch),
                      reference.mean_attention_distance(attn.clone(), grid, patch),
                      what=f"distance, grid {grid}, patch {patch}", rtol=1e-7, atol=1e-9)
    gh, gw, patch, h = 3, 3, 8, 2
    n = 1 + gh * gw
    attn = torch.full((1, h, n, n), 1.0 / n, dtype=torch.float64)
    attn[:, :, 1:4] = 0.0
    attn[:, :, 1:4, 0] = 1.0  # the first three patch queries attend only to CLS
    want = uniform_distance(gh, gw, patch, skip=3)
    got = student.mean_attention_distance(attn, (gh, gw), patch)
    expect_shape(got, (h,), what="mean_attention_distance(...)")
    for k in range(h):
        expect_close(got[k], want, what=f"head {k} with three CLS-only queries", rtol=1e-7,
                     atol=1e-9, hint="a query whose patch weights sum to 0 counts as 0")


@st.composite
def vit_configs(draw):
    heads = draw(st.integers(1, 3))
    return {"batch": draw(st.integers(1, 4)), "heads": heads,
            "dim": heads * draw(st.integers(1, 6)), "depth": draw(st.integers(1, 3)),
            "patch": draw(st.integers(1, 4)), "grid": draw(st.integers(1, 4)),
            "channels": draw(st.integers(1, 3)), "seed": draw(st.integers(0, 2**31 - 1))}


def _vit_answer(student, vit, x: torch.Tensor, *, classes: int, depth: int, heads: int,
                n: int, what: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The ViT's (logits, attentions) for ``x``, validated: finite logits [B, classes] and one
    finite [B, heads, N, N] attention per layer (None, NaN or a [2] tensor is not an answer)."""
    logits, atts = _pair(student.call(vit, x, return_attention=True, _no_grad=True), what)
    b = x.shape[0]
    expect_answer(logits, what=f"the logits of {what}", shape=(b, classes))
    if not isinstance(atts, list | tuple) or len(atts) != depth:
        fail("one attention tensor per layer is expected.", expected=f"{depth}",
             got=str(len(atts)) if isinstance(atts, list | tuple) else type(atts).__name__)
    for i, attn in enumerate(atts):
        expect_answer(attn, what=f"attention {i + 1} of {what}", shape=(b, heads, n, n))
    return logits, list(atts)


def _expect_real_vit(student) -> None:
    """Evidence of a real answer for the invariants: a small ViT (with its own initialisation)
    attends differently to two different images. Uniform attention is a distribution and
    permutes with the batch; the drawn configurations cannot show it (at width 1 LayerNorm
    makes every correct ViT's attention constant)."""
    vit = student.VisionTransformer(4, 2, 1, 3, 8, 1, 2, mlp_ratio=2.0)
    vit.eval()
    images = torch.randn(2, 1, 1, 4, 4, generator=torch.Generator().manual_seed(7))
    attentions = [_vit_answer(student, vit, x, classes=3, depth=1, heads=2, n=5,
                              what=f"VisionTransformer(4, 2, 1, 3, 8, 1, 2) on image {k}")[1][0]
                  for k, x in enumerate(images)]
    expect_nonconstant(*attentions, what="the ViT's attention", depends_on="the image",
                       hint="compute the attention from the tokens: softmax(q @ k.T / "
                       "sqrt(head_dim)), q and k from the qkv projection of the input")


@check(points=5, kind="invariant", catches="attention that is not a distribution over the keys, "
       "the wrong number of layers or tokens, or mixing images of a batch",
       rules=("attn.softmax", "model.attentions"))
@given(cfg=vit_configs())
@example(cfg={"batch": 1, "heads": 1, "dim": 1, "depth": 1, "patch": 1, "grid": 1,
              "channels": 1, "seed": 0})
def test_vit_invariants(student, cfg):
    """For any small ViT: attention is non-negative with rows summing to 1, N = 1 + patches,
    and permuting the batch permutes the logits and the attentions; and the outputs of a
    small ViT depend on its image."""
    _expect_real_vit(student)
    img = cfg["patch"] * cfg["grid"]
    n = 1 + cfg["grid"] ** 2
    vit = student.VisionTransformer(img, cfg["patch"], cfg["channels"], 3, cfg["dim"],
                                    cfg["depth"], cfg["heads"], mlp_ratio=2.0)
    vit.eval()
    g = torch.Generator().manual_seed(cfg["seed"])
    x = torch.randn(cfg["batch"], cfg["channels"], img, img, generator=g)
    perm = torch.randperm(cfg["batch"], generator=g)
    shape = {"classes": 3, "depth": cfg["depth"], "heads": cfg["heads"], "n": n}
    logits, atts = _vit_answer(student, vit, x, **shape, what="ViT")
    for i, attn in enumerate(atts):
        _rows_are_distributions(attn, f"the attention of layer {i + 1}")
    logits_p, atts_p = _vit_answer(student, vit, x[perm], **shape, what="ViT (permuted batch)")
    expect_tensor(logits_p, logits[perm], what="logits of the permuted batch", rtol=1e-4,
                  atol=1e-5)
    for i, (a, b) in enumerate(zip(atts_p, atts, strict=True)):
        expect_tensor(a, b[perm], what=f"attention {i + 1} of the permuted batch", rtol=1e-4,
                      atol=1e-6)


@st.composite
def rollout_cases(draw):
    return {"depth": draw(st.integers(1, 3)), "batch": draw(st.integers(1, 4)),
            "heads": draw(st.integers(1, 3)), "gh": draw(st.integers(1, 4)),
            "gw": draw(st.integers(1, 4)), "fusion": draw(st.sampled_from(["mean", "max", "min"])),
            "ratio": draw(st.sampled_from([0.0, 0.1, 0.5, 0.9])),
            "seed": draw(st.integers(0, 2**31 - 1))}


def _expect_real_rollout(student) -> None:
    """Evidence of a real answer for the rollout invariants: two different attention stacks
    (2 layers, 2 heads, grid 2 x 2) give two different rollouts. A uniform map is a
    distribution and permutes with the batch; a 1 x 1 grid's rollout is always [[1]]."""
    rollouts = [expect_answer(student.attention_rollout(_random_attentions(seed, 2, 1, 2, 5)),
                              what=f"attention_rollout of attention stack {seed}",
                              shape=(1, 2, 2)) for seed in (1, 2)]
    expect_nonconstant(*rollouts, what="attention_rollout", depends_on="the attentions",
                       hint="fuse the heads, add the identity, multiply the layers: R = A_L @ "
                       "... @ A_1, then R[:, 0, 1:]")


@check(points=4, kind="invariant", catches="a rollout that is not a distribution over the "
       "patches (negative, not renormalised, CLS kept) or that mixes images of a batch",
       rules=("rollout.order",))
@given(case=rollout_cases())
def test_rollout_invariants(student, case):
    """For any attentions: the rollout is [B, gh, gw], non-negative, sums to 1 per image, and
    permuting the batch permutes it; and it depends on the attentions."""
    _expect_real_rollout(student)
    n = 1 + case["gh"] * case["gw"]
    atts = _random_attentions(case["seed"], case["depth"], case["batch"], case["heads"], n)
    grid = (case["gh"], case["gw"])
    got = expect_answer(student.attention_rollout(atts, case["fusion"], case["ratio"], grid),
                        what="attention_rollout(...)", shape=(case["batch"], *grid))
    if float(got.min()) < 0 or not torch.allclose(got.sum((1, 2)), torch.ones(case["batch"],
                                                                              dtype=got.dtype)):
        fail("the rollout is not a distribution over the patches.",
             expected="values >= 0 summing to 1 per image",
             got=f"min {float(got.min()):.3g}, sums {got.sum((1, 2)).tolist()[:4]}")
    perm = torch.randperm(case["batch"], generator=torch.Generator().manual_seed(case["seed"]))
    permuted = expect_answer(student.attention_rollout([a[perm] for a in atts], case["fusion"],
                                                       case["ratio"], grid),
                             what="attention_rollout of the permuted batch",
                             shape=(case["batch"], *grid))
    expect_tensor(permuted, got[perm], what="rollout of the permuted batch", rtol=1e-7,
                  atol=1e-10)


@check(points=3, kind="robustness", catches="missing validation of empty lists, ranks, layer "
       "indices, patch sizes, depth and negative ratios",
       rules=("conv.names-argument", "maps.empty", "rollout.discard-range", "cls.layer",
              "distance.attn-shape", "distance.patch-size", "vit.depth"))
def test_bad_arguments_hidden(student):
    """More bad arguments raise ValueError naming the argument."""
    atts = [torch.full((1, 2, 7, 7), 1 / 7)]
    with expect_raises("ValueError", what="attention_rollout([])", mentions="attentions"):
        student.attention_rollout([])
    with expect_raises("ValueError", what="attention_rollout(discard_ratio=-0.1)",
                       mentions="discard_ratio"):
        student.attention_rollout(atts, discard_ratio=-0.1, grid_size=(2, 3))
    with expect_raises("ValueError", what="cls_attention_maps(layer=5) with one layer",
                       mentions="layer"):
        student.cls_attention_maps(atts, (2, 3), layer=5)
    with expect_raises("ValueError", what="mean_attention_distance of a 3-D tensor",
                       mentions="attn"):
        student.mean_attention_distance(torch.full((2, 7, 7), 1 / 7), (2, 3), 4)
    with expect_raises("ValueError", what="mean_attention_distance(patch_size=0)",
                       mentions="patch_size"):
        student.mean_attention_distance(atts[0], (2, 3), 0)
    with expect_raises("ValueError", what="VisionTransformer(depth=0)", mentions="depth"):
        student.VisionTransformer(8, 4, 3, 5, 16, 0, 2)


@check(points=2, kind="value", catches="grid_size=None or an int refused (or read as another "
       "grid) by cls_attention_maps, attention_rollout or mean_attention_distance",
       rules=("grid.forms",))
def test_grid_size_forms(student, reference):
    """grid_size as (gh, gw), as an int and as None gives the same maps, rollout and distances
    on a square grid (3 x 3 patches)."""
    g = torch.Generator().manual_seed(11)
    atts = [(2 * torch.randn(2, 2, 10, 10, generator=g)).softmax(-1) for _ in range(2)]
    for form in ((3, 3), 3, None):
        expect_tensor(student.cls_attention_maps(atts, form),
                      reference.cls_attention_maps(atts, (3, 3)),
                      what=f"cls_attention_maps(attentions, grid_size={form!r})")
        expect_tensor(student.attention_rollout(atts, grid_size=form),
                      reference.attention_rollout(atts, grid_size=(3, 3)),
                      what=f"attention_rollout(attentions, grid_size={form!r})", rtol=1e-5,
                      atol=1e-7)
        expect_tensor(student.mean_attention_distance(atts[0], form, 4),
                      reference.mean_attention_distance(atts[0], (3, 3), 4),
                      what=f"mean_attention_distance(attn, grid_size={form!r}, 4)",
                      rtol=1e-5, atol=1e-5)


@check(points=2, kind="robustness", catches="missing validation of dropout, input shapes, "
       "empty lists, grids that do not fit, the plot's tensors and the training arguments",
       rules=("conv.names-argument", "args.dropout", "maps.empty", "grid.fit", "plot.ranks",
              "attn.x-shape", "vit.x-shape", "train.positive-ints", "train.lr"))
def test_bad_arguments_more(student):
    """Dropout out of range, inputs of the wrong shape, a grid that does not fit, a 2-D image
    to plot, and non-positive epochs, batch size or lr raise ValueError."""
    cases = [
        ("MultiHeadSelfAttention(16, 4, dropout=1.0)", "dropout",
         lambda: student.MultiHeadSelfAttention(16, 4, dropout=1.0)),
        ("VisionTransformer(..., dropout=-0.1)", "dropout",
         lambda: student.VisionTransformer(8, 4, 3, 5, 16, 1, 2, dropout=-0.1)),
        ("cls_attention_maps([], ...)", "attentions",
         lambda: student.cls_attention_maps([], (2, 3))),
        ("attention_rollout with grid (3, 3) for 6 patches", "grid_size",
         lambda: student.attention_rollout([torch.full((1, 2, 7, 7), 1 / 7)],
                                           grid_size=(3, 3))),
        ("mean_attention_distance with grid (3, 3) for 6 patches", "grid_size",
         lambda: student.mean_attention_distance(torch.full((1, 2, 7, 7), 1 / 7), (3, 3), 4)),
        ("plot_attention_maps of a 2-D image", "image",
         lambda: student.plot_attention_maps(torch.rand(8, 8), torch.rand(2, 2, 2),
                                             "/tmp/bad.png")),
        ("plot_attention_maps of 2-D maps", "maps",
         lambda: student.plot_attention_maps(torch.rand(3, 8, 8), torch.rand(2, 2),
                                             "/tmp/bad.png")),
    ]
    for what, name, call in cases:
        with expect_raises("ValueError", what=what, mentions=name):
            call()
    mhsa = student.MultiHeadSelfAttention(16, 4)
    with expect_raises("ValueError", what="MultiHeadSelfAttention(16, 4) on a 2-D x [5, 16]"):
        student.call(mhsa, torch.rand(5, 16))
    vit = student.VisionTransformer(8, 4, 3, 2, 8, 1, 2)
    with expect_raises("ValueError", what="VisionTransformer(img_size=8, ...) on 12x12 images"):
        student.call(vit, torch.rand(2, 3, 12, 12))
    images, labels = torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    for name, value in (("epochs", 0), ("batch_size", 0), ("lr", 0.0)):
        kwargs = {"epochs": 1, "batch_size": 2, "lr": 1e-3, name: value}
        with expect_raises("ValueError", what=f"train_vit with {name}={value}", mentions=name):
            student.train_vit(vit, images, labels, **kwargs)


# -- training: find the object -------------------------------------------------------------------
TRAINING_CATCHES = ("a model or training loop that does not learn to find the object (no "
                    "optimizer step, labels misaligned with images, gradients cut off), or a "
                    "rollout that does not point at what the model looks at")


def _find_object_scores(student, reference, budget) -> tuple[float, float]:
    """Train the student's ViT (initialised with the reference's seeded weights) with the
    student's train_vit; return (held-out accuracy, rollout hit rate)."""
    from torchgrade.course.find_object import make_find_object

    seed, img, patch = int(budget["seed"]), int(budget["img_size"]), int(budget["patch_size"])
    classes = int(budget["n_classes"])
    train = make_find_object(int(budget["n_train"]), img_size=img, patch_size=patch,
                             n_classes=classes, seed=seed)
    test = make_find_object(int(budget["n_test"]), img_size=img, patch_size=patch,
                            n_classes=classes, seed=seed + 1)
    args = (img, patch, 3, classes, int(budget["embed_dim"]), int(budget["depth"]),
            int(budget["num_heads"]))
    torch.manual_seed(seed)
    init = reference.VisionTransformer(*args, mlp_ratio=float(budget["mlp_ratio"]))
    model = student.VisionTransformer(*args, mlp_ratio=float(budget["mlp_ratio"]))
    _load_into(model, init.state_dict(), "VisionTransformer")
    trained = student.train_vit(model, train.images, train.labels,
                                epochs=int(budget["epochs"]),
                                batch_size=int(budget["batch_size"]), lr=float(budget["lr"]),
                                generator=torch.Generator().manual_seed(seed))
    if not hasattr(trained, "type_name"):
        fail("train_vit must return the trained model.", expected="an nn.Module",
             got=type(trained).__name__)
    trained.eval()
    logits, atts = _pair(student.call(trained, test.images, return_attention=True,
                                      _no_grad=True), "the trained model")
    expect_shape(logits, (len(test.labels), classes), what="the trained model's logits")
    accuracy = float((logits.argmax(1) == test.labels).double().mean())
    rollout = student.attention_rollout(list(atts))
    expect_shape(rollout, (len(test.labels), img // patch, img // patch),
                 what="attention_rollout of the trained model")
    hits = float((rollout.flatten(1).argmax(1) == test.positions).double().mean())
    return accuracy, hits


@check(points=14, kind="training", timeout=600, profiles=("cpu",), catches=TRAINING_CATCHES,
       rules=("train.find-object", "train.loop"))
def test_find_object_training(student, reference, budget):
    """A small ViT trained with train_vit on synthetic "find the object" images classifies
    held-out images, and its attention rollout peaks on the object's patch."""
    accuracy, hits = _find_object_scores(student, reference, budget)
    floor, min_hits = float(budget["min_accuracy"]), float(budget["min_hit_rate"])
    measured("held-out accuracy", accuracy, floor, better="higher", data="find_object")
    measured("rollout hit rate", hits, min_hits, better="higher", data="find_object")
    if accuracy < floor:
        fail("the trained ViT does not classify the held-out images.",
             expected=f"accuracy >= {floor:.2f} (chance 0.25)", got=f"{accuracy:.3f}",
             hint="check the model against the value checks first; then that train_vit "
             "shuffles images and labels together and steps the optimizer every batch")
    if hits < min_hits:
        fail("the rollout of the trained ViT does not land on the object.",
             expected=f"the arg-max patch on the object for >= {min_hits:.0%} of the images "
             "(chance 1/16)", got=f"{hits:.1%} (accuracy {accuracy:.3f})",
             hint="check attention_rollout against the closed forms: (W + I) / 2, "
             "R = A_L ... A_1, CLS row over the patch columns")


# -- the course lab on a GPU: ViT-Tiny on CIFAR-10, or on generated find_object images ----------
def _lab_data(budget: dict) -> dict:
    """The GPU check's data and its table: CIFAR-10 where $TORCHGRADE_DATA has it (the
    course lab, ``[profiles.gpu.cifar10]`` over ``[profiles.gpu]``), else find_object images at
    the table's size (no download; the rollout hit rate is then checked too)."""
    from torchgrade.course import datasets
    from torchgrade.course.find_object import make_find_object

    real = datasets.read_cifar10()
    if real is not None:
        table = {**budget, **budget.get("cifar10", {})}
        train_x, train_y, test_x, test_y = real
        n_train, n_test = int(table.get("n_train", len(train_y))), int(
            table.get("n_test", len(test_y)))
        return {"table": table, "data": "CIFAR-10 ($TORCHGRADE_DATA)", "classes": 10,
                "train": (datasets.cifar10_normalise(train_x[:n_train]), train_y[:n_train]),
                "test": (datasets.cifar10_normalise(test_x[:n_test]), test_y[:n_test]),
                "positions": None}
    table = {k: v for k, v in budget.items() if not isinstance(v, dict)}
    seed, img, patch = int(table["seed"]), int(table["img_size"]), int(table["patch_size"])
    classes = int(table["n_classes"])
    train = make_find_object(int(table["n_train"]), img_size=img, patch_size=patch,
                             n_classes=classes, seed=seed)
    test = make_find_object(int(table["n_test"]), img_size=img, patch_size=patch,
                            n_classes=classes, seed=seed + 1)
    return {"table": table, "data": f"generated find_object {img}x{img}, {classes} classes",
            "classes": classes, "train": (train.images, train.labels),
            "test": (test.images, test.labels), "positions": test.positions}


@check(points=14, kind="training", timeout=3000, profiles=("gpu",), catches="a ViT or training "
       "loop that does not reach the course lab's bar (> 80 % on CIFAR-10 from scratch)",
       rules=("train.cifar10", "train.augment", "conv.device"))
def test_cifar10_vit_tiny_gpu(student, reference, budget, device):
    """The course lab: ViT-Tiny trained from scratch by train_vit (augment=True) reaches the
    accuracy bar on the CIFAR-10 test set. Reads $TORCHGRADE_DATA/cifar-10-batches-bin, and
    without it trains on generated find_object images, where the rollout must also land on
    the object."""
    lab = _lab_data(budget)
    table, classes = lab["table"], lab["classes"]
    (train_x, train_y), (test_x, test_y) = lab["train"], lab["test"]
    seed = int(table["seed"])
    args = (int(table["img_size"]), int(table["patch_size"]), 3, classes,
            int(table["embed_dim"]), int(table["depth"]), int(table["num_heads"]))
    torch.manual_seed(seed)
    init = reference.VisionTransformer(*args, mlp_ratio=float(table["mlp_ratio"]))
    model = student.VisionTransformer(*args, mlp_ratio=float(table["mlp_ratio"]))
    _load_into(model, init.state_dict(), "VisionTransformer")
    model = model.to(device)
    trained = student.train_vit(model, train_x.to(device), train_y.to(device),
                                epochs=int(table["epochs"]),
                                batch_size=int(table["batch_size"]), lr=float(table["lr"]),
                                weight_decay=float(table["weight_decay"]),
                                augment=bool(table.get("augment", True)),
                                generator=torch.Generator(device).manual_seed(seed))
    if not hasattr(trained, "type_name"):
        fail("train_vit must return the trained model.", expected="an nn.Module",
             got=type(trained).__name__)
    trained.eval()
    chunk = int(table.get("eval_batch", 1000))
    correct, hits = 0, 0
    for start in range(0, len(test_y), chunk):
        x, y = test_x[start:start + chunk].to(device), test_y[start:start + chunk]
        if lab["positions"] is None:
            logits = student.call(trained, x, _no_grad=True)
        else:
            logits, atts = _pair(student.call(trained, x, return_attention=True,
                                              _no_grad=True), "the trained model")
            rollout = student.attention_rollout(list(atts))
            expect_shape(rollout, (len(y), args[0] // args[1], args[0] // args[1]),
                         what="attention_rollout of the trained model")
            hits += int((rollout.flatten(1).argmax(1).cpu()
                         == lab["positions"][start:start + chunk]).sum())
        expect_shape(logits, (len(y), classes), what="the trained model's logits")
        correct += int((logits.argmax(1).cpu() == y).sum())
    accuracy, floor = correct / len(test_y), float(table["min_accuracy"])
    measured("test accuracy", accuracy, floor, better="higher", data=lab["data"],
             chance=round(1 / classes, 4))
    if lab["positions"] is not None:
        measured("rollout hit rate", hits / len(test_y), float(table["min_hit_rate"]),
                 better="higher", data=lab["data"])
    if accuracy < floor:
        fail("ViT-Tiny does not reach the lab's bar.",
             expected=f"test accuracy >= {floor:.2f} on {lab['data']} (chance "
             f"{1 / classes:.2f})", got=f"{accuracy:.3f}", hint="random crops and flips, "
             "AdamW with weight decay and a cosine schedule; see the handout")
    if lab["positions"] is not None and hits / len(test_y) < float(table["min_hit_rate"]):
        fail("the rollout of the trained ViT does not land on the object.",
             expected=f"the arg-max patch on the object for >= "
             f"{float(table['min_hit_rate']):.0%} of the images",
             got=f"{hits / len(test_y):.1%} (accuracy {accuracy:.3f})",
             hint="check attention_rollout against the closed forms: (W + I) / 2, "
             "R = A_L ... A_1, CLS row over the patch columns")
