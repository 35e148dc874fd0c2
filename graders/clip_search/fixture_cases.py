"""Public fixture cases of the clip_search grader, computed from the reference.

`torchgrade author fixtures clip_search` runs `build` against the hidden reference and stores
the result in fixtures/public.safetensors, so public checks need no solution on a student's
laptop. The model is the small CLIP shipped with torchgrade (``torchgrade.course.clip``); the
image folder is :func:`torchgrade.course.clip.make_search_folder` with ``FOLDER_SEED``, which
the public check writes again inside the worker. Paths are stored relative to the folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from torchgrade.course import clip, clip_data

SEED = 20261201
FOLDER_SEED = 3
BATCH = 4
QUERY = "two red circles on the left"
COLOUR_TEMPLATES = ["a {} circle", "a photo of a {} square", "some {} triangles"]


def relative(paths: list[str], root: str) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


def results_case(results: list, root: str, prefix: str) -> dict[str, Any]:
    return {f"{prefix}_paths": relative([r.path for r in results], root),
            f"{prefix}_ranks": [r.rank for r in results],
            f"{prefix}_scores": torch.tensor([r.score for r in results], dtype=torch.float64)}


def build(reference: Any) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(SEED)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    loss = {"image_embeds": img, "text_embeds": txt, "logit_scale": 14.3,
            "expected": reference.clip_loss(img, txt, 14.3).detach(),
            "image_embeds64": img.double() * 3.0, "text_embeds64": txt.double() * 0.5,
            "expected64": reference.clip_loss(img.double() * 3.0, txt.double() * 0.5,
                                              torch.tensor(14.3, dtype=torch.float64)).detach()}

    model, processor = clip.load_small_clip()
    classnames = list(clip_data.COLOURS)
    weights = reference.zero_shot_weights(model, processor.tokenizer, classnames,
                                          COLOUR_TEMPLATES)
    scenes = clip_data.sample_scenes(6, seed=SEED)
    pixels = clip_data.to_pixels(clip_data.render_many(scenes, seed=SEED))
    zero_shot = {"classnames": classnames, "templates": COLOUR_TEMPLATES,
                 "weights": weights.detach(), "pixel_values": pixels,
                 "probs": reference.zero_shot_predict(model, pixels, weights).detach()}

    with tempfile.TemporaryDirectory() as tmp:
        info = clip.make_search_folder(tmp, seed=FOLDER_SEED)
        root = info["root"]
        engine = reference.CLIPImageSearchEngine(model, processor, batch_size=BATCH)
        report = engine.build_index(root)
        search: dict[str, Any] = {"folder_seed": FOLDER_SEED, "batch_size": BATCH,
                                  "query": QUERY, "indexed": relative(report.indexed, root),
                                  "skipped": sorted(relative(list(report.skipped), root))}
        search.update(results_case(engine.search_by_text(QUERY, top_k=3), root, "text"))
        search.update(results_case(engine.search_by_text(QUERY, top_k=100), root, "all"))
        query_image = os.path.join(root, search["indexed"][-1])
        search["image_query"] = search["indexed"][-1]
        search.update(results_case(engine.search_by_image(query_image, top_k=4), root, "image"))
        files = files_case(reference, model, processor, root)
    return {"loss": loss, "zero_shot": zero_shot, "search": search, "files": files}


def files_case(reference: Any, model: Any, processor: Any, root: str) -> dict[str, Any]:
    """build_index of the folder's a/, add_images of b/'s files, save_index, and load_index
    into a fresh engine: its report of the added files and the loaded engine's results."""
    engine = reference.CLIPImageSearchEngine(model, processor, batch_size=BATCH)
    engine.build_index(os.path.join(root, "a"))
    extra = sorted(str(p.relative_to(root)) for p in (Path(root) / "b").iterdir())
    added = engine.add_images([os.path.join(root, f) for f in extra])
    path = os.path.join(root, "index.safetensors")
    engine.save_index(path)
    fresh = reference.CLIPImageSearchEngine(model, processor, batch_size=BATCH)
    fresh.load_index(path)
    case = {"folder_seed": FOLDER_SEED, "batch_size": BATCH, "query": QUERY, "extra": extra,
            "added": relative(added.indexed, root),
            "added_skipped": sorted(relative(list(added.skipped), root)),
            "index_paths": relative(engine.paths, root)}
    case.update(results_case(fresh.search_by_text(QUERY, top_k=5), root, "loaded"))
    return case
