"""Grading profiles: which checks a run selects, on which device, with which rubric table.

A check declares the profiles it runs in (``@check(profiles=("gpu",))``); a rubric holds one
table of sizes and thresholds per profile (``[profiles.<name>]``, the grader's ``budget``
fixture). Three profiles exist:

- ``cpu`` (the default): the checks declared for ``cpu``, on the CPU, ``[profiles.cpu]``.
- ``gpu``: the checks declared for ``gpu``, on CUDA (the ``device`` fixture skips them where
  there is none), ``[profiles.gpu]``.
- ``gpu_smoke``: the GPU checks end to end on the CPU at tiny sizes, so that the GPU code path
  (its data loading, its training calls, its threshold logic) runs in every CI run and a broken
  GPU check fails the day it breaks. It selects the checks declared for ``gpu``, its device is
  ``cpu``, and its table is ``[profiles.gpu]`` overlaid by ``[profiles.gpu_smoke]``: the smoke
  table names only what it shrinks (nested tables, such as a real data set's
  ``[profiles.gpu.cifar10]``, are overlaid key by key too).

A profile table may set ``cpu_budget_s``: the CPU budget of the checks declared for that
profile alone (not those shared with ``cpu``), in place of their ``timeout=``, which is sized
for the full GPU run. ``gpu_smoke`` sets it so that its budgets stay meaningful (small).
"""

from __future__ import annotations

from typing import Any, Literal

PROFILES: tuple[str, ...] = ("cpu", "gpu", "gpu_smoke")
# The declared profile whose checks a profile runs, and whose table it overlays.
_RUNS = {"cpu": "cpu", "gpu": "gpu", "gpu_smoke": "gpu"}
BUDGET_KEY = "cpu_budget_s"


def selects(profile: str) -> str:
    """The profile a check must declare to run under ``profile`` (``gpu_smoke``: ``gpu``)."""
    try:
        return _RUNS[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}") from None


def uses_cuda(profile: str) -> bool:
    """Whether the checks of ``profile`` run on CUDA (only ``gpu``; ``gpu_smoke`` is CPU)."""
    return profile == "gpu"


def device(profile: str) -> Literal["cpu", "cuda"]:
    """The device the checks of ``profile`` train on."""
    return "cuda" if uses_cuda(profile) else "cpu"


def table(budgets: dict[str, dict[str, Any]], profile: str) -> dict[str, Any]:
    """The rubric's table for ``profile``: ``[profiles.<profile>]``, or for ``gpu_smoke``
    ``[profiles.gpu]`` overlaid by ``[profiles.gpu_smoke]`` (nested tables key by key)."""
    base = selects(profile)
    merged = _copy(budgets.get(base, {}))
    if base != profile:
        for key, value in budgets.get(profile, {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = _copy(value) if isinstance(value, dict) else value
    return merged


def own_checks(profile: str, declared: tuple[str, ...]) -> bool:
    """Whether a check declared for ``declared`` belongs to ``profile`` alone (a GPU check
    under ``gpu`` and ``gpu_smoke``), so that the table's ``cpu_budget_s`` applies to it."""
    return tuple(declared) == (selects(profile),) and profile != "cpu"


def _copy(table_: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in table_.items()}
