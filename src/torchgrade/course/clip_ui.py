"""The web page of the clip_search engine, and a way to call an app's HTTP API in-process.

Why it exists: the course's exercise 3 asks for a search engine with a UI. The student's
``create_app(engine)`` serves :data:`PAGE` at ``/`` and the JSON API the page calls:

- ``GET /api/search?q=<text>&top_k=<k>`` -> ``{"query", "results": [{"rank", "path",
  "score", "url"}]}``; ``top_k < 1`` or an empty query -> status 400, a ``top_k`` that is not
  an integer -> 400 or 422 (FastAPI's own answer for an ``int`` parameter), an empty index ->
  status 409.
- ``POST /api/search_image`` (multipart, field ``file``, form field ``top_k``) -> the same
  shape, for an uploaded image; an undecodable upload -> status 400.
- ``GET /api/image?path=<indexed path>`` -> the image bytes (only paths in the index).

The grader calls the student's app through :func:`request` inside the sandboxed worker: an
in-process ASGI client (Starlette's ``TestClient``), so no socket is opened and only plain
data (status, JSON, content type) comes back. :func:`serve` runs an app with uvicorn for a
person (``python -m torchgrade.course.clip_ui``) or the browser test.
"""

from __future__ import annotations

import argparse
import json

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CLIP image search</title>
<style>
 body { font-family: sans-serif; margin: 2em; }
 #grid { display: grid; grid-template-columns: repeat(auto-fill, 150px); gap: 12px; }
 figure { margin: 0; } figure img { width: 128px; height: 128px; image-rendering: pixelated; }
 figcaption { font-size: 12px; word-break: break-all; }
</style></head>
<body>
<h1>CLIP image search</h1>
<form id="text-form">
 <input id="query" name="q" size="40" placeholder="two red circles on the left" autofocus>
 <input id="top-k" name="top_k" type="number" value="5" min="1" max="100">
 <button id="search" type="submit">Search</button>
</form>
<form id="image-form">
 <input id="upload" name="file" type="file" accept="image/*">
 <button id="search-image" type="submit">Search by image</button>
</form>
<p id="status"></p>
<div id="grid"></div>
<script>
function show(data) {
  const grid = document.getElementById("grid");
  grid.innerHTML = "";
  for (const r of data.results) {
    const fig = document.createElement("figure");
    fig.className = "result";
    fig.dataset.path = r.path; fig.dataset.rank = r.rank;
    const img = document.createElement("img");
    img.src = r.url; img.alt = r.path;
    const cap = document.createElement("figcaption");
    cap.textContent = r.rank + ". " + r.path.split("/").pop() + " (" + r.score.toFixed(3) + ")";
    fig.append(img, cap); grid.append(fig);
  }
  document.getElementById("status").textContent = data.results.length + " results";
  document.body.dataset.done = "1";
}
async function fail(resp) {
  document.getElementById("status").textContent = "error " + resp.status;
  document.body.dataset.done = "1";
}
document.getElementById("text-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  document.body.dataset.done = "";
  const q = document.getElementById("query").value;
  const k = document.getElementById("top-k").value;
  const resp = await fetch("/api/search?q=" + encodeURIComponent(q) + "&top_k=" + k);
  if (resp.ok) show(await resp.json()); else fail(resp);
});
document.getElementById("image-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  document.body.dataset.done = "";
  const body = new FormData();
  body.append("file", document.getElementById("upload").files[0]);
  body.append("top_k", document.getElementById("top-k").value);
  const resp = await fetch("/api/search_image", {method: "POST", body});
  if (resp.ok) show(await resp.json()); else fail(resp);
});
</script>
</body></html>
"""


def request(app, method: str, url: str, *, params: dict | None = None,
            files: dict | None = None, data: dict | None = None) -> dict:
    """Call ``app`` (an ASGI app) in-process and return plain data: ``{"status", "json"
    (None if the body is not JSON), "content_type", "length"}``. ``files`` maps a field to
    ``(filename, bytes, content type)``."""
    from starlette.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.request(method, url, params=params, files=files, data=data)
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    return {"status": resp.status_code, "json": body,
            "content_type": resp.headers.get("content-type", ""), "length": len(resp.content)}


def file_bytes(path: str) -> bytes:
    """The bytes of an image the grader uploads (read inside the worker)."""
    with open(path, "rb") as fh:
        return fh.read()


def demo_engine(engine_cls, image_dir: str, n: int = 60, seed: int = 0, batch_size: int = 32):
    """An engine (``engine_cls(model, processor, batch_size=...)``) over ``n`` rendered
    scenes written to ``image_dir`` (:func:`clip_data.write_image_folder`)."""
    from torchgrade.course import clip, clip_data

    clip_data.write_image_folder(image_dir, n=n, seed=seed)
    model, processor = clip.load_small_clip()
    engine = engine_cls(model, processor, batch_size=batch_size)
    engine.build_index(image_dir)
    return engine


def serve(app, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    """``python -m torchgrade.course.clip_ui path/to/clip_search.py [--images DIR]``: index
    DIR (or rendered demo scenes) with the shipped small CLIP and serve the submission's
    ``create_app`` at http://127.0.0.1:8000/."""
    import importlib.util
    import sys
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("module", help="a clip_search.py with create_app")
    parser.add_argument("--images", help="a folder of images (default: 60 rendered scenes)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location("clip_search", args.module)
    module = importlib.util.module_from_spec(spec)
    sys.modules["clip_search"] = module
    spec.loader.exec_module(module)
    if args.images:
        from torchgrade.course import clip

        model, processor = clip.load_small_clip()
        engine = module.CLIPImageSearchEngine(model, processor)
        try:
            engine.build_index(args.images, progress=True)
        except TypeError:  # a build_index without the optional progress keyword
            engine.build_index(args.images)
    else:
        engine = demo_engine(module.CLIPImageSearchEngine, tempfile.mkdtemp(prefix="clip_ui_"))
    print(f"serving on http://127.0.0.1:{args.port}/", flush=True)
    serve(module.create_app(engine), port=args.port)


if __name__ == "__main__":
    main()
