"""Throughput of the clip_search reference engine on CPU, and where FAISS starts to pay.

1. Writes 1,000 rendered scenes (``clip_data.write_image_folder``) and indexes them with the
   reference engine and the shipped small CLIP, with its progress bar (tqdm, on stderr):
   images per second for ``build_index``, queries per second for ``search_by_text``
   (text embedding + ranking) and ``search_by_image`` (path query).
2. Ranking alone, brute force (``torch`` matmul + stable sort) against FAISS ``IndexFlatIP``
   (exact), on N unit vectors of width D: the results must be identical (ids and scores), and
   the time per query batch shows where FAISS starts to pay.

Run: ``nice -n 10 python benchmarks/clip_search_throughput.py [--threads 1]``; the numbers
go into benchmarks/clip_search_throughput.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch

from torchgrade.course import clip, clip_data, clip_faiss

ROOT = Path(__file__).resolve().parents[1]


def _reference():
    path = ROOT / "solutions" / "clip_search" / "clip_search.py"
    spec = importlib.util.spec_from_file_location("clip_search_reference_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def engine_throughput(n_images: int, batch_size: int) -> dict:
    ref = _reference()
    model, processor = clip.load_small_clip()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        captions = clip_data.write_image_folder(tmp, n=n_images, seed=0)
        write_s = time.perf_counter() - t0
        engine = ref.CLIPImageSearchEngine(model, processor, batch_size=batch_size)
        t0 = time.perf_counter()
        report = engine.build_index(tmp, progress=True)
        build_s = time.perf_counter() - t0
        queries = list(captions.values())[:100]
        t0 = time.perf_counter()
        for q in queries:
            engine.search_by_text(q, top_k=5)
        text_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in report.indexed[:50]:
            engine.search_by_image(p, top_k=5)
        image_s = time.perf_counter() - t0
    return {"images": len(report.indexed), "write_s": write_s, "build_s": build_s,
            "images_per_s": len(report.indexed) / build_s,
            "text_queries_per_s": len(queries) / text_s, "image_queries_per_s": 50 / image_s}


def ranking(n: int, dim: int, n_queries: int, k: int) -> dict:
    g = torch.Generator().manual_seed(n)
    emb = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1)
    q = torch.nn.functional.normalize(torch.randn(n_queries, dim, generator=g), dim=-1)
    t0 = time.perf_counter()
    b_scores, b_ids = clip_faiss.brute_force(emb, q, k)
    brute_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = clip_faiss.FaissIndex(emb)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    f_scores, f_ids = index.search(q, k)
    faiss_s = time.perf_counter() - t0
    same_ids = bool(torch.equal(b_ids, f_ids.long()))
    max_diff = float((b_scores - f_scores).abs().max())
    return {"n": n, "dim": dim, "brute_ms": 1e3 * brute_s, "faiss_ms": 1e3 * faiss_s,
            "faiss_add_ms": 1e3 * add_s, "same_ids": same_ids, "max_score_diff": max_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        faiss = None
    out = engine_throughput(args.images, batch_size=64)
    print(f"engine: {out['images']} images indexed in {out['build_s']:.1f} s "
          f"({out['images_per_s']:.0f} img/s; writing them took {out['write_s']:.1f} s); "
          f"{out['text_queries_per_s']:.0f} text queries/s, "
          f"{out['image_queries_per_s']:.0f} image queries/s")
    if faiss is None:
        print("faiss-cpu is not installed: ranking comparison skipped")
        return
    print("| N | D | brute force (ms, 100 queries) | FAISS IndexFlatIP (ms) | FAISS add (ms) "
          "| same ids | max score diff |")
    print("|---|---|---|---|---|---|---|")
    for dim in (64, 512):
        for n in (1_000, 10_000, 100_000, 200_000):
            r = ranking(n, dim, n_queries=100, k=10)
            print(f"| {n} | {dim} | {r['brute_ms']:.1f} | {r['faiss_ms']:.1f} | "
                  f"{r['faiss_add_ms']:.1f} | {r['same_ids']} | {r['max_score_diff']:.1e} |")


if __name__ == "__main__":
    main()
