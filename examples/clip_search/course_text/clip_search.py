"""The course text's CLIP code, moved into the assignment's signatures: its clip_loss (no
normalisation), get_*_features used as tensors, a glob per extension, argsort, and an index
saved with torch.save."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class SearchResult:
    rank: int
    path: str
    score: float


@dataclass(frozen=True)
class IndexReport:
    indexed: list[str]
    skipped: dict[str, str]


def clip_loss(image_embeds, text_embeds, logit_scale):
    logits = (image_embeds @ text_embeds.T) * logit_scale
    labels = torch.arange(len(logits), device=logits.device)
    loss_i2t = F.cross_entropy(logits, labels)
    loss_t2i = F.cross_entropy(logits.T, labels)
    return (loss_i2t + loss_t2i) / 2


def zero_shot_weights(model, tokenizer, classnames, templates):
    weights = []
    for name in classnames:
        inputs = tokenizer(text=[t.format(name) for t in templates], return_tensors="pt",
                           padding=True)
        with torch.no_grad():
            f = model.get_text_features(**inputs)
            f = f / f.norm(dim=-1, keepdim=True)
        w = f.mean(dim=0)
        weights.append(w / w.norm())
    return torch.stack(weights)


def zero_shot_predict(model, pixel_values, weights):
    with torch.no_grad():
        f = model.get_image_features(pixel_values=pixel_values)
        f = f / f.norm(dim=-1, keepdim=True)
    return (model.logit_scale.exp() * f @ weights.T).softmax(dim=-1)


class CLIPImageSearchEngine:
    def __init__(self, model, processor, *, batch_size=32, device=None):
        self.device = device or "cpu"
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.image_paths = []
        self.image_embeddings = None

    def build_index(self, image_dir, extensions=(".jpg", ".jpeg", ".png")):
        image_dir = Path(image_dir)
        image_files = []
        for ext in extensions:
            image_files.extend(image_dir.glob(f"**/*{ext}"))
        image_files = sorted(image_files)
        self.image_paths = []
        return self._index(image_files, [])

    def add_images(self, paths):
        old = [self.image_embeddings] if self.image_embeddings is not None else []
        return self._index([Path(p) for p in paths], old)

    def _index(self, image_files, all_embeddings):
        skipped = {}
        start = len(self.image_paths)
        for i in range(0, len(image_files), self.batch_size):
            images = []
            for path in image_files[i:i + self.batch_size]:
                try:
                    img = Image.open(path).convert("RGB")
                    images.append(img)
                    self.image_paths.append(str(path))
                except Exception as e:  # noqa: BLE001
                    skipped[str(path)] = str(e)
                    continue
            if images:
                inputs = self.processor(images=images, return_tensors="pt")
                with torch.no_grad():
                    f = self.model.get_image_features(**inputs)
                    f = f / f.norm(dim=-1, keepdim=True)
                all_embeddings.append(f.cpu())
        self.image_embeddings = torch.cat(all_embeddings, dim=0)
        return IndexReport(self.image_paths[start:], skipped)

    def _results(self, similarities, top_k):
        top_indices = similarities.argsort(descending=True)[:top_k]
        return [SearchResult(rank + 1, self.image_paths[idx], similarities[idx].item())
                for rank, idx in enumerate(top_indices)]

    def search_by_text(self, query, top_k=5):
        if self.image_embeddings is None:
            raise ValueError("Index not built. Call build_index() first.")
        inputs = self.processor(text=[query], return_tensors="pt", padding=True)
        with torch.no_grad():
            f = self.model.get_text_features(**inputs)
            f = f / f.norm(dim=-1, keepdim=True)
        return self._results((f.cpu() @ self.image_embeddings.T).squeeze(0), top_k)

    def search_by_image(self, image_or_path, top_k=5):
        if self.image_embeddings is None:
            raise ValueError("Index not built. Call build_index() first.")
        image = image_or_path
        if not isinstance(image, Image.Image):
            image = Image.open(image_or_path).convert("RGB")
        inputs = self.processor(images=image, return_tensors="pt")
        with torch.no_grad():
            f = self.model.get_image_features(**inputs)
            f = f / f.norm(dim=-1, keepdim=True)
        return self._results((f.cpu() @ self.image_embeddings.T).squeeze(0), top_k)

    def save_index(self, path):
        torch.save({"image_paths": self.image_paths,
                    "image_embeddings": self.image_embeddings}, path)

    def load_index(self, path):
        data = torch.load(path, weights_only=True)
        self.image_paths = data["image_paths"]
        self.image_embeddings = data["image_embeddings"]
