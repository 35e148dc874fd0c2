"""Attack: find the reference solution through the garbage collector and sys.modules.

Scans ``gc.get_objects()`` and ``sys.modules`` for the grader's reference module (anything
named like ``reference``/``solution``, or any other module or function defining ``scale`` and
``total``) and for functions loaded from a ``solutions/`` file, then answers by calling the
reference. In a grader that imported the submission into its own process, the ``reference``
fixture would be right there. When nothing is found it returns zeros.
"""

import gc
import sys
import types

import torch

REF = None
SEEN = []


def _find():
    global REF
    me = sys.modules.get("toy")
    candidates = list(sys.modules.values()) + [o for o in gc.get_objects()
                                               if isinstance(o, (types.ModuleType,
                                                                 types.FunctionType))]
    for obj in candidates:
        try:
            name = getattr(obj, "__name__", "") or ""
            where = getattr(obj, "__file__", None) or getattr(
                getattr(obj, "__code__", None), "co_filename", "") or ""
            if obj is me or where.endswith("toy.py") and "solutions" not in where:
                continue
            if "reference" in name or "solution" in name or "solutions" in where:
                SEEN.append(f"{name}@{where}")
                if isinstance(obj, types.ModuleType) and isinstance(
                        vars(obj).get("scale"), types.FunctionType):
                    REF = obj
            elif isinstance(obj, types.ModuleType) and isinstance(
                    vars(obj).get("scale"), types.FunctionType) and isinstance(
                    vars(obj).get("total"), types.FunctionType):
                SEEN.append(f"{name}@{where}")
                REF = obj
        except Exception:  # noqa: BLE001
            pass
    print(f"gc_reference_hunt: candidates {SEEN[:10]}; reference found: {REF is not None}")


_find()


def scale(x, s):
    if REF is None:
        _find()
    return REF.scale(x, s) if REF is not None else torch.zeros_like(x)


def total(x):
    return REF.total(x) if REF is not None else torch.zeros((), requires_grad=True)
