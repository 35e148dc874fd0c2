"""Are the degenerate twins of a stub what the audit says they are?

Each twin is executed here (it is generated from course code, not a submission) and every
top-level function is called, so the test pins what a twin returns, not how its source looks.
"""

from __future__ import annotations

import ast
import math
import sys
import types
from pathlib import Path

import pytest
import torch

from torchgrade.assignment import available, load
from torchgrade.twins import KINDS, generate_twins, make_twin

ROOT = Path(__file__).resolve().parents[1]

# Like a stub: a docstring, a __future__ import, torch only as `from torch import Tensor`, a
# constant, a class whose methods raise, a private helper, a decorated function, a function
# without positional arguments.
STUB = '''"""A stub."""
from __future__ import annotations

import functools

from torch import Tensor, nn

LIMIT = 3


class Head(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        raise NotImplementedError("Head")

    def forward(self, h: Tensor) -> Tensor:
        raise NotImplementedError("forward")


def _check(x: Tensor, name: str) -> None:
    raise NotImplementedError("_check")


@functools.lru_cache(maxsize=None)
def table(n: int = LIMIT) -> list[int]:
    """A docstring that stays."""
    raise NotImplementedError("table")


def loss(z_i: Tensor, z_j: Tensor, /, t: float = 0.5, *, eps: float = 1e-8) -> Tensor:
    raise NotImplementedError("loss")


def build(*, size: int) -> Tensor:
    raise NotImplementedError("build")
'''


def _load(source: str) -> dict:
    """Run a twin as a module (dataclasses look their module up in sys.modules)."""
    module = types.ModuleType("torchgrade_test_twin")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "<twin>", "exec"), module.__dict__)  # course code, not a student's
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def test_every_top_level_function_answers_with_its_kind():
    """none -> None, nan -> a [2] NaN tensor, zero -> a 0-dim zero, identity -> the first
    positional argument itself (None without one); private and decorated functions too."""
    z = torch.randn(3, 4)
    for kind in KINDS:
        twin = make_twin(STUB, kind)
        assert twin.rewritten == ("_check", "table", "loss", "build")
        assert twin.student == f"twin-{kind}"
        module = _load(twin.source)
        answers = [module["_check"](z, "z"), module["table"](2), module["loss"](z, z.clone()),
                   module["build"](size=2)]
        if kind == "none":
            assert answers == [None] * 4
        elif kind == "nan":
            for a in answers:
                assert type(a) is torch.Tensor and a.shape == (2,) and bool(a.isnan().all())
        elif kind == "zero":
            for a in answers:
                assert type(a) is torch.Tensor and a.shape == () and float(a) == 0.0
        else:
            assert answers[0] is z and answers[1] == 2 and answers[2] is z
            assert answers[3] is None  # keyword-only: no positional argument


def test_classes_imports_constants_and_docstrings_stay():
    """The class keeps the stub's behaviour (it raises), the constant and imports stay, and so
    do docstrings, signatures and decorators."""
    for twin in generate_twins(STUB):
        module = _load(twin.source)
        assert module["LIMIT"] == 3
        with pytest.raises(NotImplementedError, match="Head"):
            module["Head"](4)
        tree = ast.parse(twin.source)
        assert ast.get_docstring(tree) == "A stub."
        table = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and
                     n.name == "table")
        assert ast.get_docstring(table) == "A docstring that stays."
        assert ast.unparse(table.decorator_list[0]) == "functools.lru_cache(maxsize=None)"
        head = next(n for n in tree.body if isinstance(n, ast.ClassDef))
        original = next(n for n in ast.parse(STUB).body if isinstance(n, ast.ClassDef))
        assert ast.dump(head) == ast.dump(original)
        assert "from __future__ import annotations" in twin.source.splitlines()[1]


def test_unknown_kinds_and_broken_stubs_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_twin(STUB, "ones")
    with pytest.raises(ValueError, match="does not parse"):
        make_twin("def f(:\n", "none")


@pytest.mark.parametrize("name", available(ROOT))
def test_twins_of_every_shipped_stub_import_and_rewrite_every_function(name):
    """Each shipped stub's twins import, rewrite every top-level function of the stub, and the
    NaN twin answers NaN from each."""
    stub = load(name, ROOT).stub_file.read_text(encoding="utf-8")
    defs = [n for n in ast.parse(stub).body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert defs, f"{name}'s stub has no top-level function"
    for twin in generate_twins(stub):
        assert twin.rewritten == tuple(d.name for d in defs)
        _load(twin.source)  # imports as the stub does
    nan = _load(make_twin(stub, "nan").source)
    for d in defs:  # every required argument None: a twin never looks at its arguments
        required = len(d.args.posonlyargs) + len(d.args.args) - len(d.args.defaults)
        keywords = {a.arg: None for a, default in zip(d.args.kwonlyargs, d.args.kw_defaults,
                                                      strict=True) if default is None}
        out = nan[d.name](*[None] * required, **keywords)
        assert out.shape == (2,) and all(math.isnan(v) for v in out.tolist()), d.name
