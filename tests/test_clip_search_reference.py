"""Is the clip_search reference right, and is the shipped small CLIP good enough to grade with?

The grader trusts ``solutions/clip_search/clip_search.py`` value for value, so it is checked
here without the sandbox: the loss against its closed forms and a hand-written loop, the
zero-shot weights against the prompt-ensemble recipe, and the search engine against a brute-
force cosine ranking computed with the course helpers, on the folders the grader generates.
The shipped model (``torchgrade/course/clip_model``) must load offline, stay small, and
retrieve the right image for held-out captions far above chance.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from torchgrade.course import clip, clip_data

ROOT = Path(__file__).resolve().parents[1]
# Measured for the shipped model (benchmarks/clip_small_model.md); chance is k/n = 0.05.
MIN_HELDOUT_RECALL5 = 0.8
MIN_ZERO_SHOT_COLOUR = 0.5


def _load():
    path = ROOT / "solutions" / "clip_search" / "clip_search.py"
    spec = importlib.util.spec_from_file_location("clip_search_reference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load()


@pytest.fixture(scope="module")
def small_clip():
    return clip.load_small_clip()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- the loss ------------------------------------------------------------------------------------
def test_loss_matches_a_hand_written_loop():
    """Is clip_loss the mean of the two cross-entropies over cosine logits, row by row?"""
    img, txt = torch.randn(5, 7, generator=_gen(0), dtype=torch.float64), \
        torch.randn(5, 7, generator=_gen(1), dtype=torch.float64)
    s = 12.5
    a = [v / v.norm() for v in img]
    b = [v / v.norm() for v in txt]
    i2t = t2i = 0.0
    for i in range(5):
        row = [s * float(a[i] @ b[j]) for j in range(5)]
        col = [s * float(a[j] @ b[i]) for j in range(5)]
        i2t += -row[i] + math.log(sum(math.exp(x) for x in row))
        t2i += -col[i] + math.log(sum(math.exp(x) for x in col))
    want = (i2t + t2i) / 10
    assert float(ref.clip_loss(img, txt, s)) == pytest.approx(want, rel=1e-12)


def test_loss_closed_forms_and_scale_invariance():
    """Identical orthonormal rows give log(1 + (B-1) e^-s), orthogonal sets log B, whatever
    the norms; a tensor logit_scale works like a number."""
    eye = torch.eye(4, 8, dtype=torch.float64)
    got = ref.clip_loss(eye * 3, eye * 0.2, torch.tensor(10.0, dtype=torch.float64))
    assert float(got) == pytest.approx(math.log1p(3 * math.exp(-10)), rel=1e-12)
    other = torch.roll(torch.eye(8, dtype=torch.float64), 4, dims=1)[:4]
    assert float(ref.clip_loss(eye, other, 5.0)) == pytest.approx(math.log(4), rel=1e-12)


def test_loss_backpropagates_and_validates():
    img = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    txt = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ref.clip_loss(a, b, 7.0), (img, txt))
    for args, name in [((torch.randn(3, 4), torch.randn(2, 4), 1.0), "same shape"),
                       ((torch.randn(3, 4), torch.randn(3, 4), 0.0), "logit_scale"),
                       ((torch.randn(3), torch.randn(3), 1.0), "image_embeds")]:
        with pytest.raises(ValueError, match=name):
            ref.clip_loss(*args)


# -- zero-shot -----------------------------------------------------------------------------------
def test_zero_shot_weights_are_the_renormalised_mean_of_unit_prompts(small_clip):
    model, processor = small_clip
    templates = ["a {} circle", "some {} shapes"]
    w = ref.zero_shot_weights(model, processor, ["red", "blue"], templates)
    assert w.shape == (2, model.config.projection_dim)
    for row, name in zip(w, ["red", "blue"], strict=True):
        emb = clip.embed_texts(model, processor, [t.format(name) for t in templates])
        want = F.normalize(emb.mean(0), dim=0)
        torch.testing.assert_close(row, want, rtol=1e-5, atol=1e-6)
    probs = ref.zero_shot_predict(model, clip_data.to_pixels(
        clip_data.render_many(clip_data.sample_scenes(3, 0), 0)), w)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))


# -- the search engine ---------------------------------------------------------------------------
def test_build_index_order_skips_and_brute_force_ranking(small_clip, tmp_path):
    """Does build_index take sorted(rglob) with case-insensitive extensions, skip and report
    exactly the undecodable files, and rank like a brute-force cosine over the same images?"""
    model, processor = small_clip
    info = clip.make_search_folder(tmp_path, seed=3)
    engine = ref.CLIPImageSearchEngine(model, processor, batch_size=3)
    report = engine.build_index(tmp_path)
    rel = [os.path.relpath(p, tmp_path) for p in report.indexed]
    assert rel == sorted(info["images"], key=lambda r: Path(tmp_path, r))
    assert sorted(os.path.relpath(p, tmp_path) for p in report.skipped) == sorted(info["corrupt"])
    images = [clip.read_image(p) for p in report.indexed]
    emb = clip.embed_images(model, processor, images)
    q = clip.embed_texts(model, processor, ["two red circles on the left"])[0]
    scores = emb @ q
    want = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    got = engine.search_by_text("two red circles on the left", top_k=100)
    assert [r.rank for r in got] == list(range(1, len(want) + 1))
    assert [r.path for r in got] == [report.indexed[i] for i in want]
    assert [r.score for r in got] == pytest.approx([float(scores[i]) for i in want], abs=1e-5)


def test_ties_top_k_and_empty_index(small_clip):
    model, processor = small_clip
    info = clip.make_tie_folder(None)
    engine = ref.CLIPImageSearchEngine(model, processor, batch_size=1)
    with pytest.raises(RuntimeError):
        engine.search_by_text("a red circle")
    engine.build_index(info["root"])
    got = engine.search_by_text(info["caption_other"], top_k=50)
    names = [os.path.basename(r.path) for r in got]
    assert len(got) == 5 and [n for n in names if n != "other.png"] == info["copies"]


def test_save_load_round_trip_and_pickle_rejection(small_clip, tmp_path):
    from safetensors import safe_open

    model, processor = small_clip
    info = clip.make_search_folder(tmp_path / "imgs", seed=5)
    engine = ref.CLIPImageSearchEngine(model, processor, batch_size=4)
    report = engine.build_index(info["root"])
    engine.save_index(tmp_path / "index.safetensors")
    with safe_open(str(tmp_path / "index.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["paths"]) == report.indexed
        assert f.get_tensor("embeddings").shape[0] == len(report.indexed)
    fresh = ref.CLIPImageSearchEngine(model, processor)
    fresh.load_index(tmp_path / "index.safetensors")
    assert fresh.search_by_text("a blue square") == engine.search_by_text("a blue square")
    marker = tmp_path / "UNPICKLED"
    clip.write_pickled_index(tmp_path / "bad.pt", marker)
    with pytest.raises(Exception):  # noqa: B017 - any rejection will do, but no unpickling
        fresh.load_index(tmp_path / "bad.pt")
    assert not marker.exists()
    # The tripwire works: unpickling the file does create the marker.
    torch.load(tmp_path / "bad.pt", weights_only=False)
    assert marker.exists()


def test_add_images_appends(small_clip, tmp_path):
    model, processor = small_clip
    info = clip.make_search_folder(tmp_path, seed=7)
    engine = ref.CLIPImageSearchEngine(model, processor, batch_size=2)
    first = engine.build_index(tmp_path / "a").indexed
    extra = sorted(str(p) for p in (tmp_path / "b").iterdir())
    added = engine.add_images(extra)
    assert engine.paths == first + added.indexed
    assert set(added.skipped) == {str(tmp_path / c) for c in info["corrupt"] if
                                  c.startswith("b/")}
    assert engine.embeddings.shape[0] == len(engine.paths)


# -- the shipped model ---------------------------------------------------------------------------
def test_shipped_model_is_small_safetensors_and_offline():
    files = sorted(p.name for p in clip.MODEL_DIR.iterdir())
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt")) for f in files)
    size = sum(p.stat().st_size for p in clip.MODEL_DIR.iterdir())
    assert size < 5 << 20
    model, processor = clip.load_small_clip()
    tok = processor.tokenizer
    cfg = model.config.text_config
    assert cfg.eos_token_id == tok.eos_token_id != 2 and cfg.eos_token_id < cfg.vocab_size
    assert cfg.bos_token_id < cfg.vocab_size


def test_shipped_model_retrieves_heldout_captions_far_above_chance(small_clip):
    """Recall@5 of 100 held-out captions, each with exactly one right image (chance 0.05)."""
    model, processor = small_clip
    assert clip.heldout_recall(model, processor, k=5) >= MIN_HELDOUT_RECALL5


def test_shipped_model_zero_shot_colours(small_clip):
    model, processor = small_clip
    names = list(clip_data.COLOURS)
    w = ref.zero_shot_weights(model, processor, names, ["a {} circle", "a {} square",
                                                        "a {} triangle", "some {} shapes"])
    scenes = clip_data.sample_scenes(120, 12345)
    probs = ref.zero_shot_predict(model, clip_data.to_pixels(
        clip_data.render_many(scenes, 12346)), w)
    labels = torch.tensor([names.index(s.colour) for s in scenes])
    assert float((probs.argmax(1) == labels).float().mean()) >= MIN_ZERO_SHOT_COLOUR


def test_synthetic_images_are_deterministic():
    a = clip_data.render_many(clip_data.sample_scenes(4, 9), 9)
    b = clip_data.render_many(clip_data.sample_scenes(4, 9), 9)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    assert clip_data.Scene("red", "circle", "left", 2).caption == "two red circles on the left"
