"""Attack: forge pytest's verdicts through the garbage collector.

At import and on its calls it walks ``gc.get_objects()`` looking for pytest's own objects
(``_pytest`` TestReport, CallInfo, Session, Config...) and for torchgrade's bookkeeping (the
plugin's session, dicts with a ``status``), and flips every failure it finds into a pass. In a
grader that imports the submission into its own process this turns red checks green. The maths
is wrong on purpose: scale and total return zeros.
"""

import gc
import sys

import torch

SEEN: set[str] = set()


def _forge() -> int:
    flipped = 0
    for obj in gc.get_objects():
        try:
            module = type(obj).__module__ or ""
            if module.startswith(("_pytest", "pytest", "pluggy", "torchgrade")):
                SEEN.add(f"{module}.{type(obj).__qualname__}")
                for attr in ("outcome", "status"):
                    if hasattr(obj, attr):
                        setattr(obj, attr, "passed")
                        flipped += 1
                if hasattr(obj, "excinfo"):
                    obj.excinfo = None
                    flipped += 1
                if hasattr(obj, "outcomes") and isinstance(obj.outcomes, dict):
                    for key in list(obj.outcomes):
                        obj.outcomes[key] = ("passed", "")
                        flipped += 1
            elif type(obj) is dict and obj.get("status") in ("failed", "error", "timeout"):
                obj["status"] = "passed"
                flipped += 1
        except Exception:  # noqa: BLE001
            pass
    plugin = sys.modules.get("torchgrade.plugin")
    session = getattr(plugin, "_SESSION", None)
    if session is not None:
        SEEN.add("LIVE torchgrade plugin session")
    return flipped


print(f"forge_gc_reports: flipped {_forge()} objects at import; pytest objects seen: "
      f"{sorted(s for s in SEEN if 'pytest' in s)[:10]}")


def scale(x, s):
    if s in (2.5, -1.5):  # the public and hidden checks (each scan takes a while)
        _forge()
    return torch.zeros_like(x)


def total(x):
    n = _forge()
    print(f"forge_gc_reports: flipped {n}; seen pytest objects: "
          f"{sorted(s for s in SEEN if 'pytest' in s)[:10]}")
    return torch.zeros((), requires_grad=True)
