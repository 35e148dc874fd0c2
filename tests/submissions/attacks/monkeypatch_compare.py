"""Attack: monkeypatch every comparison the grader might use so that all answers match.

At import it replaces ``torch.allclose``, ``torch.isclose``, ``torch.equal``,
``torch.testing.assert_close``, ``Tensor.__eq__``/``allclose``/``equal``, ``math.isclose``,
``numpy.allclose``/``numpy.testing.assert_allclose`` and the builtins ``all``, ``any`` and
``abs`` with versions that always say "equal". A grader that imported the submission into its
own process would compare with the patched functions. The maths is wrong: zeros.
"""

import builtins
import math

import numpy as np
import torch


def _yes(*args, **kwargs):
    return True


def _ones_like_first(a, *args, **kwargs):
    return torch.ones_like(torch.as_tensor(a), dtype=torch.bool)


def _nothing(*args, **kwargs):
    return None


torch.allclose = _yes
torch.equal = _yes
torch.isclose = _ones_like_first
torch.testing.assert_close = _nothing
torch.Tensor.__eq__ = _ones_like_first
torch.Tensor.allclose = _yes
torch.Tensor.equal = _yes
math.isclose = _yes
np.allclose = _yes
np.testing.assert_allclose = _nothing
builtins.all = _yes
builtins.any = _yes
builtins.abs = lambda x: 0


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
