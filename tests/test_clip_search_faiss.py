"""Does the optional FAISS index (faiss-cpu) return exactly the brute-force ranking?"""

from __future__ import annotations

import pytest
import torch

from torchgrade.course import clip_faiss


def test_faiss_flat_ip_equals_brute_force():
    pytest.importorskip("faiss", reason="faiss-cpu is optional; the FAISS comparison needs it")
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(3000, 64, generator=g), dim=-1)
    queries = torch.nn.functional.normalize(torch.randn(20, 64, generator=g), dim=-1)
    b_scores, b_ids = clip_faiss.brute_force(emb, queries, 10)
    f_scores, f_ids = clip_faiss.FaissIndex(emb).search(queries, 10)
    assert torch.equal(b_ids, f_ids.long())
    torch.testing.assert_close(b_scores, f_scores, rtol=0, atol=1e-5)
    # k larger than the index returns the whole index, as the engine's top_k does.
    small = clip_faiss.FaissIndex(emb[:7])
    assert small.search(queries[:1], 50)[1].shape == (1, 7)
