"""Course code for the clip_search assignment: the shipped small CLIP and what the grader builds.

Why it exists: the grader needs a CLIP that works offline, the same one in the trusted process
and in the sandboxed worker (``student.construct("torchgrade.course.clip:small_clip_model")``),
plus image folders with known contents written inside the worker's own ``/tmp``.

- :func:`small_clip_model` / :func:`small_clip_processor`: the ``transformers.CLIPModel`` and
  ``CLIPProcessor`` in ``clip_model/`` (trained by :mod:`torchgrade.course.clip_train`).
- :func:`real_clip` : real CLIP weights from a local Hugging Face cache, for the GPU profile.
- :class:`TensorFeatures`: wraps a model so that ``get_*_features`` return plain tensors (the
  transformers 4 behaviour), so an engine is checked with both kinds of return value.
- :func:`make_search_folder`: the folder the search-engine checks index (nested folders, upper-
  case extensions, a corrupt PNG, a text file named ``.jpg``, non-image files, duplicates).
- :func:`make_tie_folder`: exact copies of one image (exact ties when embedded one at a time).
- :class:`CountingCLIP`: records the batch sizes the engine embeds images in.
- :func:`write_pickled_index`: a pickle that creates a marker directory when unpickled.
- :func:`recall_at_k`: retrieval quality of text queries against an image gallery.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from torchgrade.course import clip_data

MODEL_DIR = Path(__file__).with_name("clip_model")
REAL_CLIP = "openai/clip-vit-base-patch32"


def small_clip_model():
    """The shipped small CLIP, in eval mode, loaded from the package (never downloaded)."""
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(MODEL_DIR, local_files_only=True)
    return model.eval()


def small_clip_processor():
    """The shipped processor: the word-level tokenizer and a 64x64 CLIPImageProcessor."""
    from transformers import CLIPProcessor

    return CLIPProcessor.from_pretrained(MODEL_DIR, local_files_only=True)


def small_clip_tokenizer():
    """The shipped word-level tokenizer alone."""
    return small_clip_processor().tokenizer


def load_small_clip():
    """``(model, processor)`` of the shipped small CLIP."""
    return small_clip_model(), small_clip_processor()


def real_clip(name: str = REAL_CLIP):
    """``(model, processor)`` of real CLIP weights from the local Hugging Face cache, or
    ``None`` when the cache does not hold them (nothing is downloaded)."""
    from transformers import CLIPModel, CLIPProcessor

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model = CLIPModel.from_pretrained(name, local_files_only=True)
        processor = CLIPProcessor.from_pretrained(name, local_files_only=True)
    except OSError:
        return None
    return model.eval(), processor


def real_clip_model(name: str = REAL_CLIP):
    """The real CLIP model from the local cache (FileNotFoundError when it is not there)."""
    loaded = real_clip(name)
    if loaded is None:
        raise FileNotFoundError(f"{name} is not in the local Hugging Face cache")
    return loaded[0]


def real_clip_processor(name: str = REAL_CLIP):
    loaded = real_clip(name)
    if loaded is None:
        raise FileNotFoundError(f"{name} is not in the local Hugging Face cache")
    return loaded[1]


class TensorFeatures(nn.Module):
    """A CLIP whose ``get_image_features``/``get_text_features`` return plain ``[B, D]``
    tensors, as in transformers 4; everything else is the wrapped model's."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.logit_scale = model.logit_scale

    @staticmethod
    def _tensor(out) -> Tensor:
        return out if isinstance(out, Tensor) else out.pooler_output

    def get_image_features(self, *args, **kwargs) -> Tensor:
        return self._tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs) -> Tensor:
        return self._tensor(self.model.get_text_features(*args, **kwargs))


def small_clip_tensor_features():
    """The shipped small CLIP behind :class:`TensorFeatures`."""
    return TensorFeatures(small_clip_model()).eval()


def features(out) -> Tensor:
    """The embedding in what ``get_*_features`` returned: a tensor or its ``.pooler_output``."""
    return out if isinstance(out, Tensor) else out.pooler_output


@torch.no_grad()
def embed_texts(model, processor, texts: list[str]) -> Tensor:
    """Unit-norm text embeddings ``[N, D]``."""
    inputs = processor(text=texts, return_tensors="pt", padding=True)
    emb = features(model.get_text_features(input_ids=inputs["input_ids"],
                                           attention_mask=inputs["attention_mask"]))
    return torch.nn.functional.normalize(emb, dim=-1)


@torch.no_grad()
def embed_images(model, processor, images: list, batch_size: int = 64) -> Tensor:
    """Unit-norm image embeddings ``[N, D]`` of PIL images."""
    chunks = []
    for i in range(0, len(images), batch_size):
        pixels = processor(images=images[i:i + batch_size], return_tensors="pt")["pixel_values"]
        chunks.append(features(model.get_image_features(pixel_values=pixels)))
    return torch.nn.functional.normalize(torch.cat(chunks), dim=-1)


def recall_at_k(text_emb: Tensor, image_emb: Tensor, k: int) -> float:
    """The share of queries ``i`` whose image ``i`` is among the ``k`` best by cosine."""
    sims = text_emb @ image_emb.T  # [Q, N]
    topk = sims.topk(min(k, sims.shape[1]), dim=1).indices
    hits = (topk == torch.arange(len(text_emb)).unsqueeze(1)).any(dim=1)
    return hits.float().mean().item()


def heldout_recall(model, processor, k: int = 5, n: int = 100, seed: int = 12345) -> float:
    """Recall@k of the held-out gallery (``n`` distinct captions, chance is ``k / n``)."""
    scenes, images = clip_data.heldout_gallery(n, seed)
    txt = embed_texts(model, processor, [s.caption for s in scenes])
    img = embed_images(model, processor, images)
    return recall_at_k(txt, img, k)


def make_search_folder(root: str | Path | None = None, seed: int = 0, n: int = 10) -> dict:
    """Write the search-engine check's folder under ``root`` and describe it as plain data.

    ``n`` rendered scenes in nested folders with .png/.PNG/.jpg/.jpeg extensions, plus one
    exact duplicate (a tie), a corrupt .png (truncated bytes), a text file named .jpg, a .txt
    file, a .gif and a file without extension. Returns ``{"root", "images": {relative path:
    caption}, "corrupt": [relative paths that must be skipped], "ignored": [relative paths
    that must be left out silently]}``.
    """
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="clip_search_")) if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    scenes = rng.sample(clip_data.all_scenes(), n)
    images: dict[str, str] = {}
    exts = [".png", ".jpg", ".PNG", ".jpeg", ".JPG"]
    dirs = ["", "b", "a/deeper", "a"]
    for i, scene in enumerate(scenes):
        rel = str(Path(dirs[i % len(dirs)]) / f"{chr(ord('z') - 2 * i)}_{i}{exts[i % len(exts)]}")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
        clip_data.render(scene, rng).save(path, format=fmt)
        images[rel] = scene.caption
    first = sorted(images)[0]
    dup = str(Path(first).parent / ("zz_copy" + Path(first).suffix))
    (root / dup).write_bytes((root / first).read_bytes())
    images[dup] = images[first]
    corrupt = ["a/c_broken.png", "b/m_not_an_image.jpg"]
    good = (root / first).read_bytes()
    (root / corrupt[0]).write_bytes(good[: len(good) // 3])
    (root / corrupt[1]).write_text("this is not a JPEG\n")
    ignored = ["notes.txt", "a/anim.gif", "README"]
    (root / ignored[0]).write_text("captions live elsewhere\n")
    clip_data.render(scenes[0], rng).save(root / ignored[1], format="GIF")
    (root / ignored[2]).write_text("no extension\n")
    return {"root": str(root), "images": images, "corrupt": corrupt, "ignored": ignored}


def read_image(path: str | Path):
    """A PIL image of the file at ``path`` inside the worker (for ``search_by_image``)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def make_tie_folder(root: str | Path | None = None, seed: int = 1, copies: int = 4) -> dict:
    """``copies`` byte-identical PNGs ``copy_0.png``... around one other image ``other.png``
    (sorted: ``copy_0 .. copy_{k-1}``, then ``other``). Returns ``{"root", "copies": [relative
    paths], "other": relative path, "caption_copy", "caption_other"}``."""
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="clip_ties_")) if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    one, two = rng.sample(clip_data.all_scenes(), 2)
    clip_data.render(one, rng).save(root / "copy_0.png")
    data = (root / "copy_0.png").read_bytes()
    names = [f"copy_{i}.png" for i in range(copies)]
    for name in names[1:]:
        (root / name).write_bytes(data)
    clip_data.render(two, rng).save(root / "other.png")
    return {"root": str(root), "copies": names, "other": "other.png",
            "caption_copy": one.caption, "caption_other": two.caption}


def heldout_folder(root: str | Path | None = None, n: int = 100, seed: int = 12345) -> dict:
    """The held-out gallery (:func:`clip_data.heldout_gallery`) as PNGs ``img_000.png``...
    Returns ``{"root", "captions": [caption of img_i]}``."""
    root = Path(tempfile.mkdtemp(prefix="clip_heldout_")) if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    scenes, images = clip_data.heldout_gallery(n, seed)
    for i, image in enumerate(images):
        image.save(root / f"img_{i:03d}.png")
    return {"root": str(root), "captions": [s.caption for s in scenes]}


class CountingCLIP(nn.Module):
    """The wrapped CLIP, recording how many images each ``get_image_features`` call embeds
    (``image_batches``, plain ints the grader reads back)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.logit_scale = model.logit_scale
        self.image_batches: list[int] = []

    def get_image_features(self, pixel_values=None, **kwargs):
        if pixel_values is not None:
            self.image_batches.append(int(pixel_values.shape[0]))
        return self.model.get_image_features(pixel_values=pixel_values, **kwargs)

    def get_text_features(self, *args, **kwargs):
        return self.model.get_text_features(*args, **kwargs)


def counting_small_clip() -> CountingCLIP:
    return CountingCLIP(small_clip_model()).eval()


class _Tripwire:
    """Unpickling this creates the marker directory: proof that a file was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def write_pickled_index(path: str | Path, marker: str | Path, n: int = 3, dim: int = 64) -> str:
    """Write, with ``torch.save``, what a pickling ``save_index`` would write (embeddings and
    paths), plus a tripwire that creates ``marker`` if the file is ever unpickled."""
    emb = torch.nn.functional.normalize(torch.randn(n, dim), dim=-1)
    torch.save({"embeddings": emb, "paths": [f"img_{i}.png" for i in range(n)],
                "tripwire": _Tripwire(str(marker))}, str(path))
    return str(path)


def path_exists(path: str | Path) -> bool:
    """Whether ``path`` exists inside the worker."""
    return os.path.lexists(path)


def list_files(root: str | Path) -> list[str]:
    """The relative paths of the files under ``root`` (sorted)."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
