"""Train the small CLIP that torchgrade ships (``torchgrade/course/clip_model/``).

Why it exists: retrieval quality is only gradable offline if the project has a CLIP of its own.
This script builds a ``transformers.CLIPModel`` with a small config and a word-level tokenizer
for the synthetic captions of :mod:`torchgrade.course.clip_data`, trains it contrastively on
CPU, and saves model, tokenizer and processor with ``save_pretrained`` (safetensors).

Reproducible: ``python -m torchgrade.course.clip_train --out DIR`` with the defaults gives
the shipped model (seeded; one CPU thread so that float reductions run in one order).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from torchgrade.course import clip_data

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
MAX_LEN = 16


def build_tokenizer():
    """A word-level tokenizer over :func:`clip_data.vocabulary`: ids 0-3 are pad, unk, bos and
    eos (eos is not 2, so the text model pools at the first eos, not at ``argmax(ids)``)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, UNK: 1, BOS: 2, EOS: 3}
    for word in clip_data.vocabulary():
        vocab[word] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK,
                                   bos_token=BOS, eos_token=EOS, model_max_length=MAX_LEN)


def build_processor(tokenizer):
    from transformers import CLIPImageProcessor, CLIPProcessor

    size = clip_data.IMAGE_SIZE
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size},
        image_mean=list(clip_data.MEAN), image_std=list(clip_data.STD))
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_model(tokenizer, seed: int):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=MAX_LEN,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id)
    vision = dict(image_size=clip_data.IMAGE_SIZE, patch_size=8, hidden_size=64,
                  intermediate_size=128, num_hidden_layers=3, num_attention_heads=2)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=64)
    return CLIPModel(config)


def train(out: Path, *, steps: int = 1500, batch_size: int = 128, lr: float = 2e-3,
          seed: int = 0, n_images: int = 20000, log_every: int = 100) -> dict:
    """Train and save; returns the log (also written to ``out/train_log.json``)."""
    torch.set_num_threads(1)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer)
    model = build_model(tokenizer, seed)
    t0 = time.perf_counter()
    scenes = clip_data.sample_scenes(n_images, seed=seed + 1)
    pixels = clip_data.to_pixels(clip_data.render_many(scenes, seed=seed + 2))  # [N, 3, 64, 64]
    captions = sorted({s.caption for s in scenes})
    cap_index = {c: i for i, c in enumerate(captions)}
    cap_of = torch.tensor([cap_index[s.caption] for s in scenes])
    tokens = tokenizer(captions, padding="max_length", max_length=MAX_LEN, return_tensors="pt")
    render_s = time.perf_counter() - t0

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    warmup = steps // 20
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / steps))))
    rng = random.Random(seed + 3)
    by_caption: dict[int, list[int]] = {}
    for i, c in enumerate(cap_of.tolist()):
        by_caption.setdefault(c, []).append(i)
    keys = sorted(by_caption)
    log: list[dict] = []
    model.train()
    for step in range(steps):
        # One image per distinct caption in a batch: no false negatives in the contrastive loss.
        caps = rng.sample(keys, min(batch_size, len(keys)))
        idx = torch.tensor([rng.choice(by_caption[c]) for c in caps])
        x = pixels[idx]
        if rng.random() < 0.5:  # small shifts; flips would swap left and right
            dx, dy = rng.randint(-2, 2), rng.randint(-2, 2)
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        ids = tokens["input_ids"][caps]
        mask = tokens["attention_mask"][caps]
        outs = model(input_ids=ids, attention_mask=mask, pixel_values=x)
        labels = torch.arange(len(caps))
        loss = 0.5 * (F.cross_entropy(outs.logits_per_image, labels)
                      + F.cross_entropy(outs.logits_per_text, labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % log_every == 0 or step == steps - 1:
            log.append({"step": step, "loss": round(loss.item(), 4),
                        "s": round(time.perf_counter() - t0, 1)})
            print(log[-1], flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    info = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
            "n_images": n_images, "render_s": round(render_s, 1),
            "train_s": round(time.perf_counter() - t0, 1), "log": log}
    (out / "train_log.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "clip_model")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train(args.out, steps=args.steps, seed=args.seed)


if __name__ == "__main__":
    main()
