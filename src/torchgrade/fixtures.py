"""Public-check fixtures: inputs and expected outputs computed once from the reference.

Public checks run on a student's laptop, where there is no reference solution. Each grader
ships ``graders/<name>/fixture_cases.py`` with ``build(reference) -> {case: {field: value}}``;
``torchgrade author fixtures <name>`` runs it against the reference and writes
``graders/<name>/fixtures/public.safetensors``: tensors under ``<case>/<field>``, other
values as JSON in the file's metadata. Loading never unpickles anything.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from torchgrade.assignment import Assignment

META_KEY = "torchgrade.cases"


def save_cases(path: Path, cases: dict[str, dict[str, Any]]) -> Path:
    import torch
    from safetensors.torch import save

    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for case, fields in sorted(cases.items()):
        if "/" in case:
            raise ValueError(f"case names cannot contain '/': {case!r}")
        scalars[case] = {}
        for key, value in sorted(fields.items()):
            if isinstance(value, torch.Tensor):
                # A copy: safetensors refuses tensors that share memory (views, reused inputs).
                tensors[f"{case}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                json.dumps(value)  # fixtures hold plain JSON values besides tensors
                scalars[case][key] = value
    data = save(tensors, metadata={META_KEY: json.dumps(scalars, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def load_cases(path: Path | str) -> dict[str, dict[str, Any]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing public fixtures {path}")
    cases: dict[str, dict[str, Any]] = {}
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads((fh.metadata() or {}).get(META_KEY, "{}"))
        for case, fields in meta.items():
            cases[case] = dict(fields)
        for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
            case, _, field = key.partition("/")
            cases.setdefault(case, {})[field] = fh.get_tensor(key)
    return cases


def build_cases(assignment: Assignment) -> dict[str, dict[str, Any]]:
    """Run the grader's ``fixture_cases.build`` against the reference solution.

    On one torch thread, whatever the caller's setting: a multi-threaded reduction may sum in
    another order, and the stored fixtures must be rebuilt bit for bit by the staleness test
    (tests/test_fixtures.py) on any machine and after any other test changed the thread count.
    """
    import torch

    builder = _import(assignment.grader_dir / "fixture_cases.py", "torchgrade_fixture_cases")
    reference = _import(assignment.solution_file, f"torchgrade_reference_{assignment.name}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return builder.build(reference)
    finally:
        torch.set_num_threads(threads)


def build_fixtures(assignment: Assignment) -> Path:
    return save_cases(assignment.fixtures_dir / "public.safetensors", build_cases(assignment))


def _import(path: Path, name: str) -> Any:
    import sys

    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
