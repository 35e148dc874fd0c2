"""An optional FAISS index for the clip_search engine, with the brute-force ranking it must equal.

Why it exists: exercise 3's engine ranks by brute force (one matrix-vector product over the
index). For large collections FAISS (``faiss-cpu``) is the usual replacement; this module
wraps an exact inner-product index (``IndexFlatIP``: on unit vectors, the cosine) so that a
benchmark (``benchmarks/clip_search_throughput.py``) can show it returns the same results as
brute force and measure where it starts to pay. FAISS is optional: importing this module
does not import it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def brute_force(embeddings: Tensor, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The exact top ``k`` by inner product: ``(scores [Q, k], ids [Q, k])``, ties in index
    order (a stable sort)."""
    scores = queries @ embeddings.T  # [Q, N]
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


class FaissIndex:
    """``faiss.IndexFlatIP`` over unit-norm float32 embeddings ``[N, D]``."""

    def __init__(self, embeddings: Tensor) -> None:
        import faiss

        emb = embeddings.detach().float().contiguous().cpu().numpy()
        self.index = faiss.IndexFlatIP(emb.shape[1])
        self.index.add(emb)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        scores, ids = self.index.search(queries.detach().float().contiguous().cpu().numpy(),
                                        min(k, len(self)))
        return torch.from_numpy(scores), torch.from_numpy(ids)
