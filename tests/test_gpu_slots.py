"""One GPU per concurrent grading under the gpu profile (batch.gpu_slots, batch.visible_gpus).

No GPU is needed: the grading function is a stand-in that records which CUDA_VISIBLE_DEVICES
each call was given and how many calls held each GPU at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from pathlib import Path

from torchgrade.batch import gpu_slots, visible_gpus
from torchgrade.runner import Options


def test_concurrent_gradings_never_share_a_gpu():
    lock = threading.Lock()
    holding: dict[str, int] = {}
    most: dict[str, int] = {}
    seen: list[str] = []

    def grade(assignment, submission, student, options):  # stand-in for grade_submission
        gpu = options.cuda_devices
        with lock:
            holding[gpu] = holding.get(gpu, 0) + 1
            most[gpu] = max(most.get(gpu, 0), holding[gpu])
            seen.append(gpu)
        time.sleep(0.02)
        with lock:
            holding[gpu] -= 1
        return student

    graded = gpu_slots(grade, ["0", "1"])
    with cf.ThreadPoolExecutor(max_workers=4) as pool:  # more threads than GPUs
        done = list(pool.map(lambda i: graded(None, Path("x"), f"s{i}", Options(profile="gpu")),
                             range(16)))
    assert done == [f"s{i}" for i in range(16)]
    assert set(seen) == {"0", "1"} and len(seen) == 16
    assert most == {"0": 1, "1": 1}


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
