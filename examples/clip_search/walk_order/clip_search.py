"""clip_search with one typical mistake: files taken folder by folder in os.walk order, extensions
matched case-sensitively."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import torch
import torch.nn.functional as F
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from torchgrade.course.clip_ui import PAGE

INDEX_FORMAT = "clip_search-index-v1"


@dataclass(frozen=True)
class SearchResult:
    rank: int
    path: str
    score: float


@dataclass(frozen=True)
class IndexReport:
    indexed: list[str]
    skipped: dict[str, str]


def _emb(out):
    return out if torch.is_tensor(out) else out.pooler_output


def clip_loss(image_embeds, text_embeds, logit_scale):
    if image_embeds.ndim != 2 or text_embeds.ndim != 2:
        raise ValueError("image_embeds and text_embeds must be 2-D [B, D]")
    if image_embeds.shape != text_embeds.shape:
        raise ValueError("image_embeds and text_embeds must have the same shape")
    if float(logit_scale) <= 0:
        raise ValueError("logit_scale must be positive")
    a = image_embeds / image_embeds.norm(dim=1, keepdim=True)
    b = text_embeds / text_embeds.norm(dim=1, keepdim=True)
    sim = logit_scale * (a @ b.t())
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target)) / 2


@torch.no_grad()
def zero_shot_weights(model, tokenizer, classnames, templates):
    if not classnames:
        raise ValueError("classnames is empty")
    if not templates:
        raise ValueError("templates is empty")
    out = []
    for name in classnames:
        enc = tokenizer(text=[t.format(name) for t in templates], padding=True,
                        return_tensors="pt")
        e = _emb(model.get_text_features(input_ids=enc["input_ids"],
                                         attention_mask=enc["attention_mask"]))
        e = e / e.norm(dim=-1, keepdim=True)
        m = e.mean(0)
        out.append(m / m.norm())
    return torch.stack(out)


@torch.no_grad()
def zero_shot_predict(model, pixel_values, weights):
    if pixel_values.ndim != 4:
        raise ValueError("pixel_values must be [B, 3, H, W]")
    if weights.ndim != 2:
        raise ValueError("weights must be [C, D]")
    f = _emb(model.get_image_features(pixel_values=pixel_values))
    f = f / f.norm(dim=-1, keepdim=True)
    return torch.softmax(model.logit_scale.exp() * f @ weights.t(), dim=-1)


class CLIPImageSearchEngine:
    def __init__(self, model, processor, *, batch_size=32, device=None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model, self.processor, self.batch_size = model, processor, batch_size
        self.device = device or "cpu"
        self.paths = []
        self.vectors = None

    def _encode_images(self, images):
        px = self.processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            v = _emb(self.model.get_image_features(pixel_values=px.to(self.device)))
        return F.normalize(v.float().cpu(), dim=-1)

    def _index(self, files):
        good, bad, vecs, pending = [], {}, [], []

        def flush():
            if pending:
                vecs.append(self._encode_images([im for _, im in pending]))
                good.extend(p for p, _ in pending)
                pending.clear()

        for f in files:
            try:
                im = Image.open(f)
                im.load()
                pending.append((str(f), im.convert("RGB")))
            except Exception as e:  # noqa: BLE001
                bad[str(f)] = repr(e)
                continue
            if len(pending) >= self.batch_size:
                flush()
        flush()
        if vecs:
            new = torch.cat(vecs)
            self.vectors = new if self.vectors is None else torch.cat([self.vectors, new])
            self.paths += good
        return IndexReport(good, bad)

    def build_index(self, image_dir, extensions=(".jpg", ".jpeg", ".png")):
        exts = tuple(e.lower() for e in extensions)
        files = []
        for d, dirs, names in os.walk(image_dir):
            dirs.sort()
            files += [Path(d) / n for n in sorted(names) if n.endswith(exts)]
        self.paths, self.vectors = [], None
        return self._index(files)

    def add_images(self, paths):
        return self._index([Path(p) for p in paths])

    def _rank(self, q, top_k):
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        if not self.paths:
            raise RuntimeError("empty index")
        scores = (self.vectors @ q).tolist()
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]  # stable
        return [SearchResult(n + 1, self.paths[i], scores[i]) for n, i in enumerate(order)]

    def search_by_text(self, query, top_k=5):
        if not query:
            raise ValueError("query is empty")
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        enc = self.processor(text=[query], padding=True, return_tensors="pt")
        with torch.no_grad():
            q = _emb(self.model.get_text_features(
                input_ids=enc["input_ids"].to(self.device),
                attention_mask=enc["attention_mask"].to(self.device)))
        return self._rank(F.normalize(q.float().cpu(), dim=-1)[0], top_k)

    def search_by_image(self, image_or_path, top_k=5):
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        im = image_or_path
        if not isinstance(im, Image.Image):
            im = Image.open(im)
        return self._rank(self._encode_images([im.convert("RGB")])[0], top_k)

    def save_index(self, path):
        save_file({"embeddings": self.vectors.contiguous()}, str(path),
                  metadata={"format": INDEX_FORMAT, "paths": json.dumps(self.paths)})

    def load_index(self, path):
        with safe_open(str(path), "pt") as f:
            emb = f.get_tensor("embeddings")
            paths = json.loads(f.metadata()["paths"])
        if len(paths) != emb.shape[0]:
            raise ValueError("corrupt index")
        self.paths, self.vectors = paths, emb.float()


def create_app(engine):
    app = FastAPI()

    def as_json(query, hits):
        return {"query": query, "results": [
            {"rank": h.rank, "path": h.path, "score": h.score,
             "url": f"/api/image?path={h.path}"} for h in hits]}

    @app.get("/")
    def index():
        return HTMLResponse(PAGE)

    @app.get("/api/search")
    def search(q: str = "", top_k: int = 5):
        if not q or top_k < 1:
            raise HTTPException(400, "need q and top_k >= 1")
        try:
            return as_json(q, engine.search_by_text(q, top_k))
        except RuntimeError as exc:  # the index is empty
            raise HTTPException(409, str(exc)) from None

    @app.post("/api/search_image")
    async def search_image(request: Request):
        form = await request.form()
        upload = form["file"]
        top_k = int(form.get("top_k", 5))
        if top_k < 1:
            raise HTTPException(400, "top_k >= 1")
        try:
            im = Image.open(BytesIO(await upload.read())).convert("RGB")
        except Exception:  # noqa: BLE001
            raise HTTPException(400, "not an image") from None
        return as_json(upload.filename, engine.search_by_image(im, top_k))

    @app.get("/api/image")
    def image(path: str):
        if path not in engine.paths:
            raise HTTPException(404, "unknown image")
        return FileResponse(path)

    return app
