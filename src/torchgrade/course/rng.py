"""Has the student's code drawn from torch's global random generator?

Why it exists: where a contract says randomness comes only from the ``generator`` argument, a
grader checks that the global generator was left alone. In the worker it reseeds
(``student.reseed(s)``), lets the student's function run with a seeded generator, and draws
:func:`global_draw`; reseeding again and drawing without the student's call in between must give
the same numbers.
"""

from __future__ import annotations

import torch


def global_draw(n: int = 4) -> torch.Tensor:
    """``n`` numbers from torch's global generator (what ``torch.rand`` without a generator
    would give next)."""
    return torch.rand(int(n))
