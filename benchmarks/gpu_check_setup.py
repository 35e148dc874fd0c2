"""Install torchgrade for ``make gpu-check`` where nothing can be downloaded.

Why it exists: the machines lent with a GPU have a Python of their own (3.12) with a CUDA
torch of another version and most of what torchgrade needs, but no network, no apt and no
bubblewrap (benchmarks/gpu_check.md). This script installs torchgrade from this working tree
with ``pip --no-deps --no-index`` into a folder (``--site``; made world-readable, so that a
worker dropped to ``nobody`` can import it), adds each wheel of ``benchmarks/wheels/`` whose
distribution this Python lacks, and says which modules the GPU checks need that are missing
(the checks that need them then fail, naming the module). Standard library only: it runs
before torchgrade can be imported.

    python3 benchmarks/gpu_check_setup.py --site /tmp/torchgrade-gpu-check
    PYTHONPATH=/tmp/torchgrade-gpu-check python3 -m torchgrade gpu-check
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "benchmarks" / "wheels"
# What the gradings import, by module, and who needs it (beyond the standard library).
NEEDED = {
    "torch": "every check", "numpy": "every grader", "safetensors": "the protocol, fixtures",
    "pytest": "every grader", "hypothesis": "every grader", "jinja2": "the report pages",
    "sklearn": "nt_xent's linear probe, mae_masking's digits",
    "PIL": "clip_search's images", "transformers": "clip_search's CLIP",
    "tokenizers": "clip_search's CLIP", "cv2": "video_action's clips",
}
PIP = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
       "--no-cache-dir", "--disable-pip-version-check"]


def install_torchgrade(site: Path) -> str:
    """pip-install this tree into ``site`` (no dependencies, no index); where pip cannot build
    it (no setuptools), copy the package, which is pure Python with its data inside."""
    done = subprocess.run([*PIP, "--no-build-isolation", "--target", str(site), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode == 0 and (site / "torchgrade" / "__init__.py").is_file():
        return "pip install --no-deps --no-index"
    shutil.copytree(ROOT / "src" / "torchgrade", site / "torchgrade",
                    ignore=shutil.ignore_patterns("__pycache__"))
    why = (done.stderr.strip().splitlines() or ["?"])[-1]
    return f"copied from src/ (pip could not build it: {why})"


def _distribution(wheel: Path) -> str:
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def install_wheels(site: Path) -> tuple[list[str], list[str]]:
    """Each wheel of benchmarks/wheels/ whose distribution this Python lacks, into ``site``;
    returns (installed, already present)."""
    installed, present = [], []
    for wheel in sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []:
        name = _distribution(wheel)
        try:
            importlib.metadata.distribution(name)
            present.append(name)
            continue
        except importlib.metadata.PackageNotFoundError:
            pass
        subprocess.run([*PIP, "--target", str(site), str(wheel)], check=True)
        installed.append(wheel.name)
    return installed, present


def readable(site: Path) -> None:
    for base, dirs, files in os.walk(site):
        for name in dirs:
            os.chmod(os.path.join(base, name), 0o755)
        for name in files:
            path = os.path.join(base, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)
    os.chmod(site, 0o755)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("/tmp/torchgrade-gpu-check"),
                        help="the folder torchgrade is installed into (emptied first)")
    args = parser.parse_args()
    if sys.version_info < (3, 11):  # noqa: UP036 - said plainly to an older Python
        print(f"gpu-check needs Python >= 3.11, this is {sys.version.split()[0]}",
              file=sys.stderr)
        return 2
    site = args.site.resolve()
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    how = install_torchgrade(site)
    installed, present = install_wheels(site)
    readable(site)
    sys.path.insert(0, str(site))
    missing = {m: who for m, who in NEEDED.items() if importlib.util.find_spec(m) is None}
    print(f"torchgrade installed into {site} ({how}) for {sys.executable} "
          f"(Python {sys.version.split()[0]})")
    if installed or present:
        print(f"wheels of {WHEELS.relative_to(ROOT)}: installed {', '.join(installed) or 'none'}"
              f"; already present here: {', '.join(present) or 'none'}")
    for module, who in missing.items():
        print(f"missing here: {module} (needed by {who}): those checks will fail naming it; "
              f"bring its wheel into {WHEELS.relative_to(ROOT)}/ (benchmarks/gpu_check.md)")
    if "torch" in missing:
        print("torch is missing: this Python cannot grade anything", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
