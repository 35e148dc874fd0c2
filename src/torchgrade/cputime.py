"""Limits on student work in CPU seconds, so that a busy grading machine cannot change a grade.

A wall-clock limit punishes a student for their neighbours: with four busy processes on two
cores, a one-thread worker gets 40 % of a core and needs 2.5 times as long, and a correct
training loop ran into its "endless loop" limit. So each check's limit on student work is a
budget of CPU seconds consumed by the worker (every process and thread of it), read from
outside the sandbox, where student code cannot touch the count:

- :class:`CgroupMeter`: the worker's own ``cpuacct`` cgroup (``cpuacct.usage``, which keeps
  the time of threads and processes that have exited), where cgroups are writable;
- :class:`TreeMeter`: ``/proc/<pid>/stat`` of the worker's process tree (Linux without
  cgroups: a container, a laptop);
- no meter at all (no ``/proc``: macOS): the budget is then measured on the wall clock, as a
  last resort, and :func:`describe` says so.

Besides CPU time, each meter reads how long the worker's threads were *runnable but waiting
for a CPU* (``/proc/<tid>/schedstat``, the run-queue delay). That tells the two kinds of
"slow" apart when a wait has gone on too long:

- the worker was neither running nor waiting for a CPU: it was *idle* (``time.sleep``,
  ``input()``, a lock or a queue that never fills). That is the student's code, judged after
  as many idle seconds as the check has CPU seconds;
- it was running or runnable all along, yet has not used its CPU budget by the wall-clock
  backstop (``wall_factor`` x budget + ``wall_slack_s``): the machine was overloaded. That is
  an *infrastructure* outcome: no points given or taken, and the batch grades it again.

:class:`Budget` holds one check's (or one import's) budget and :meth:`Budget.judge` applies
these rules; time sits behind a ``clock`` seam so the rules are tested without waiting.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

Verdict = Literal["cpu", "idle", "overloaded"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Without run-queue data, a worker that used less than this share of the wall clock while the
# backstop ran out was not computing (it slept); with more, the machine starved it.
_IDLE_CPU_SHARE = 0.05


@dataclasses.dataclass(frozen=True)
class Usage:
    """What a worker has consumed so far."""

    cpu_s: float  # CPU seconds of all its processes and threads, exited ones included
    delay_s: float | None  # seconds runnable but waiting for a CPU; None where unknown


class Meter(Protocol):
    def read(self) -> Usage | None:
        """The worker's usage now; None when it cannot be read (the worker is gone, or this
        host has no way to tell)."""

    def deprioritised(self) -> bool:
        """Whether the worker lowered its own CPU priority (a positive nice value, or the
        SCHED_BATCH/SCHED_IDLE policies): starved by its own doing, not the machine's."""


_SCHED_BATCH, _SCHED_IDLE = 3, 5


def _lowered(tids: list[str] | list[int]) -> bool:
    for tid in tids:
        try:
            stat = Path(f"/proc/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        try:  # nice is field 19, the policy field 41 of proc(5)'s stat
            if int(fields[16]) > 0 or int(fields[38]) in (_SCHED_BATCH, _SCHED_IDLE):
                return True
        except (IndexError, ValueError):
            continue
    return False


def _schedstat_delay(tid: str | int) -> float | None:
    """Run-queue delay of one thread (ns in the kernel's /proc/<tid>/schedstat)."""
    try:
        fields = Path(f"/proc/{tid}/schedstat").read_text().split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _threads(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def schedstat_works() -> bool:
    """Whether this kernel reports run-queue delays (CONFIG_SCHEDSTATS / SCHED_INFO): a
    process that has run for a while shows a non-zero CPU time in its schedstat."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[0]) > 0
    except (OSError, IndexError, ValueError):
        return False


class CgroupMeter:
    """The worker's ``cpuacct`` cgroup: exact CPU time of everything in it."""

    def __init__(self, cgroup: Path) -> None:
        self.cgroup = cgroup
        self.delays = schedstat_works()
        self.delay_s = 0.0

    def read(self) -> Usage | None:
        try:
            cpu = int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
            tids = (self.cgroup / "tasks").read_text().split() if self.delays else []
        except (OSError, ValueError):
            return None
        if not self.delays:
            return Usage(cpu, None)
        # A thread that exits takes its delay with it: the sum never runs backwards.
        delay = sum(d for d in map(_schedstat_delay, tids) if d is not None)
        self.delay_s = max(self.delay_s, delay)
        return Usage(cpu, self.delay_s)

    def deprioritised(self) -> bool:
        try:
            return _lowered((self.cgroup / "tasks").read_text().split())
        except OSError:
            return False


class TreeMeter:
    """The worker's process tree, from ``/proc`` (no cgroup needed). ``root`` is the pid of
    the worker's outermost process, or a function returning it (None while unknown)."""

    def __init__(self, root: int | Callable[[], int | None]) -> None:
        self.root = root
        self.delays = schedstat_works()
        self.last = Usage(0.0, 0.0 if self.delays else None)

    def read(self) -> Usage | None:
        root = self.root() if callable(self.root) else self.root
        if root is None or not Path(f"/proc/{root}").is_dir():
            return None
        cpu, delay = 0.0, 0.0
        for pid in _tree(root):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # exited just now
            # utime, stime, cutime, cstime: fields 14-17, after the ")" closing the name.
            fields = stat[stat.rindex(")") + 2:].split()
            cpu += sum(int(f) for f in fields[11:15]) / _TICK
            if self.delays:
                delay += sum(d for d in map(_schedstat_delay, _threads(pid)) if d is not None)
        # A process that exits before its parent reaps it takes its time with it: never let
        # the count run backwards.
        self.last = Usage(max(cpu, self.last.cpu_s),
                          max(delay, self.last.delay_s or 0.0) if self.delays else None)
        return self.last

    def deprioritised(self) -> bool:
        root = self.root() if callable(self.root) else self.root
        return root is not None and _lowered(
            [tid for pid in _tree(root) for tid in _threads(pid)])


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (via /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        for tid in _threads(pid):
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children")
                         .read_text().split()]
            except (OSError, ValueError):
                pass
    return out


class NoMeter:
    """A host where CPU time cannot be read from outside: budgets fall back to wall time."""

    def read(self) -> Usage | None:
        return None

    def deprioritised(self) -> bool:
        return False


def describe(meter: Meter) -> str:
    """How the budget is measured, for the report."""
    if isinstance(meter, CgroupMeter | TreeMeter):
        how = "cgroup cpuacct" if isinstance(meter, CgroupMeter) else "/proc"
        return f"CPU time ({how})" + ("" if meter.delays else ", no run-queue data")
    return "wall-clock time (this host does not show a process's CPU time)"


@dataclasses.dataclass
class Budget:
    """One check's budget for student work (or the import's), and how far it has gone.

    ``cpu_s``: CPU seconds the worker may use. The same number of seconds of idleness (inside
    calls to the worker) ends the check as the student's too. ``wall_factor`` x ``cpu_s`` +
    ``wall_slack_s`` of wall-clock time inside one call is the backstop: reached while the
    worker was computing, the machine was overloaded. ``metered``: False where the host shows
    no CPU time (:class:`NoMeter`); the wall time spent in calls then stands in for it.
    """

    cpu_s: float
    wall_factor: float = 5.0
    wall_slack_s: float = 30.0
    metered: bool = True
    clock: Callable[[], float] = time.monotonic
    baseline: Usage | None = None  # the worker's usage when this budget's work began
    idle_s: float = 0.0  # idle seconds inside calls so far
    used_cpu_s: float = 0.0  # CPU seconds used, as last measured

    @property
    def backstop_s(self) -> float:
        return self.wall_factor * self.cpu_s + self.wall_slack_s

    def start(self, usage: Usage | None) -> None:
        """The student's work begins now (after the import, for a check)."""
        if self.baseline is None and usage is not None:
            self.baseline = usage

    def wait(self) -> Wait:
        """One call to the worker begins. It is judged by :meth:`Wait.judge` only once it has
        lasted a while, so that the meter is not read for the many quick calls."""
        return Wait(self, self.clock())

    def spent(self, usage: Usage | None) -> float:
        """CPU seconds used against this budget, updated from ``usage`` when given."""
        if usage is not None and self.baseline is not None:
            self.used_cpu_s = max(0.0, usage.cpu_s - self.baseline.cpu_s)
        return self.used_cpu_s


@dataclasses.dataclass
class Wait:
    """The wait for one reply of the worker, judged against its :class:`Budget`."""

    budget: Budget
    started: float
    at_start: Usage | None = None  # the first reading inside this wait

    def judge(self, usage: Usage | None) -> Verdict | None:
        """None while the worker may go on; else why it must stop. ``usage`` is a fresh
        reading of the worker's meter (None: the worker is gone, or there is no meter)."""
        b = self.budget
        now = b.clock()
        if not b.metered or (usage is None and self.at_start is None):
            # No CPU time to read (yet): the wall clock stands in, as it did before budgets.
            return "cpu" if b.used_cpu_s + now - self.started >= b.cpu_s else None
        if usage is None:
            return None  # the worker just exited: its reply reader reports how
        if self.at_start is None:  # the first reading: this wait is measured from here
            self.at_start, self.started = usage, now
        wall = now - self.started
        if b.spent(usage) >= b.cpu_s:
            return "cpu"
        cpu = usage.cpu_s - self.at_start.cpu_s
        if usage.delay_s is not None and self.at_start.delay_s is not None:
            if b.idle_s + self._idle(wall, cpu, usage) >= b.cpu_s:
                return "idle"
            return "overloaded" if wall >= b.backstop_s else None
        if wall >= b.backstop_s:
            return "idle" if cpu < _IDLE_CPU_SHARE * wall else "overloaded"
        return None

    def _idle(self, wall: float, cpu: float, usage: Usage) -> float:
        assert self.at_start is not None and self.at_start.delay_s is not None
        return max(0.0, wall - cpu - ((usage.delay_s or 0.0) - self.at_start.delay_s))

    def end(self, usage: Usage | None) -> None:
        """The reply came (``usage``: a reading taken then, or None when this wait was too
        short to read the meter): count the wait against the budget."""
        b = self.budget
        now = b.clock()
        if not b.metered:
            b.used_cpu_s += now - self.started
            return
        if usage is None or self.at_start is None:
            return
        b.spent(usage)
        if usage.delay_s is not None and self.at_start.delay_s is not None:
            b.idle_s += self._idle(now - self.started, usage.cpu_s - self.at_start.cpu_s, usage)
