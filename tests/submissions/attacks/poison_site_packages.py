"""Attack: poison the Python the grader runs, so the grader imports attacker code next time.

SAFETY: only ever graded inside bubblewrap (read-only mounts); its payloads only set a marker.

At import it tries to create ``torchgrade_attack.pth``, ``sitecustomize.py`` and
``usercustomize.py`` in every ``sys.path`` directory and site-packages folder, and
``_attack_marker.py`` plus a ``conftest.py`` inside the torchgrade package folder. A ``.pth``
line or ``sitecustomize`` runs in every later Python start, including the grader's. The test
asserts none of those files exists afterwards. The maths is wrong.
"""

import site
import sys
from pathlib import Path

import torch

MARKER = "TORCHGRADE-ATTACK-MARKER"
PAYLOADS = {
    "torchgrade_attack.pth": f"import sys; sys.torchgrade_attack = {MARKER!r}\n",
    "sitecustomize.py": f"# {MARKER}\nimport sys\nsys.torchgrade_attack = True\n",
    "usercustomize.py": f"# {MARKER}\nimport sys\nsys.torchgrade_attack = True\n",
}


def _targets() -> list[Path]:
    dirs = {Path(p) for p in sys.path if p} | {Path(p) for p in site.getsitepackages()}
    try:
        import torchgrade

        engine = Path(torchgrade.__file__).parent
        dirs.add(engine)
    except ImportError:
        engine = None
    return sorted(d for d in dirs if d.is_dir())


WROTE = []
for target in _targets():
    files = dict(PAYLOADS)
    if target.name == "torchgrade":
        files = {"_attack_marker.py": f"# {MARKER}\n", "conftest.py": f"# {MARKER}\n"}
    for name, text in files.items():
        try:
            (target / name).write_text(text)
            WROTE.append(str(target / name))
        except OSError:
            pass
print(f"poison_site_packages: wrote {WROTE}")


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
