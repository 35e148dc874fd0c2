"""Are limits on student work CPU time, and does a busy machine stay the machine's problem?

The rules of ``torchgrade.cputime`` are tested with a fake clock and scripted readings (no
waiting), then the meters are read on real processes: a busy one, a sleeping one, and one
starved of CPU by a cgroup quota, where the run-queue delay must show the starving.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from torchgrade.cputime import Budget, CgroupMeter, TreeMeter, Usage, schedstat_works


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _budget(cpu_s: float = 10.0, **kw) -> tuple[Budget, FakeClock]:
    clock = FakeClock()
    budget = Budget(cpu_s, wall_factor=kw.pop("wall_factor", 3.0),
                    wall_slack_s=kw.pop("wall_slack_s", 5.0), clock=clock, **kw)
    budget.start(Usage(1.0, 0.0))  # the import left 1 CPU second on the meter
    return budget, clock


def test_a_busy_worker_is_stopped_when_its_cpu_budget_is_spent() -> None:
    """Is the verdict "cpu" exactly when the CPU used since the check began reaches the budget
    (the import's CPU before it not counted)?"""
    budget, clock = _budget()
    wait = budget.wait()
    assert wait.judge(Usage(1.0, 0.0)) is None  # first reading: the wait is measured from here
    clock.now += 9.0
    assert wait.judge(Usage(10.9, 0.0)) is None
    clock.now += 0.1
    assert wait.judge(Usage(11.0, 0.0)) == "cpu"
    assert budget.used_cpu_s == pytest.approx(10.0)


def test_a_starved_worker_is_not_the_students_fault() -> None:
    """With 20 % of a CPU (the rest of the time runnable, waiting on the run queue), does the
    worker go on past its budget in wall time, and end as "overloaded" only at the backstop
    (3 x 10 + 5 = 35 s)?"""
    budget, clock = _budget()
    wait = budget.wait()
    wait.judge(Usage(1.0, 0.0))
    for second in range(1, 35):
        clock.now += 1.0
        assert wait.judge(Usage(1.0 + 0.2 * second, 0.8 * second)) is None, second
    clock.now += 1.0
    assert wait.judge(Usage(1.0 + 0.2 * 35, 0.8 * 35)) == "overloaded"


def test_an_idle_worker_is_the_students_fault() -> None:
    """A worker neither running nor waiting for a CPU (time.sleep, input(), a lock) is idle:
    is it stopped as "idle" once idle as long as its CPU budget, long before the backstop?"""
    budget, clock = _budget()
    wait = budget.wait()
    wait.judge(Usage(1.0, 0.0))
    clock.now += 9.9
    assert wait.judge(Usage(1.0, 0.0)) is None
    clock.now += 0.2
    assert wait.judge(Usage(1.0, 0.0)) == "idle"


def test_idle_time_adds_up_over_the_calls_of_a_check() -> None:
    """Do many short idle waits in one check add up to the same verdict as one long one?"""
    budget, clock = _budget()
    for _ in range(3):
        wait = budget.wait()
        wait.judge(Usage(1.0, 0.0))
        clock.now += 3.0
        assert wait.judge(Usage(1.0, 0.0)) is None
        wait.end(Usage(1.0, 0.0))
    assert budget.idle_s == pytest.approx(9.0)
    wait = budget.wait()
    wait.judge(Usage(1.0, 0.0))
    clock.now += 0.9
    assert wait.judge(Usage(1.0, 0.0)) is None
    clock.now += 0.2
    assert wait.judge(Usage(1.0, 0.0)) == "idle"


def test_without_run_queue_data_the_backstop_tells_sleep_from_starving() -> None:
    """Where the kernel shows no run-queue delay, is a wait that reaches the backstop "idle"
    when the worker used (almost) no CPU, and "overloaded" when it computed all along?"""
    for share, verdict in ((0.01, "idle"), (0.2, "overloaded")):
        budget, clock = _budget()
        wait = budget.wait()
        wait.judge(Usage(1.0, None))
        clock.now += 34.0
        assert wait.judge(Usage(1.0 + share * 34, None)) is None
        clock.now += 1.0
        assert wait.judge(Usage(1.0 + share * 35, None)) == verdict


def test_without_a_meter_the_wall_clock_stands_in() -> None:
    """On a host that shows no CPU time (macOS), is the budget measured on the wall clock over
    the check's calls, as before budgets were CPU time?"""
    budget, clock = _budget(metered=False)
    wait = budget.wait()
    clock.now += 6.0
    assert wait.judge(None) is None
    wait.end(None)
    wait = budget.wait()
    clock.now += 4.0
    assert wait.judge(None) == "cpu"


def _spin(seconds: float) -> subprocess.Popen:
    code = f"import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def test_tree_meter_counts_a_child_process_and_not_sleep() -> None:
    """Does the /proc meter of a process tree count the CPU of a busy grandchild, and nothing
    for a sleeping process?"""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "code = 'import time\\nt = time.process_time()\\n"
        "while time.process_time() - t < 1.0: pass\\ntime.sleep(30)'\n"
        "subprocess.Popen([sys.executable, '-c', code])\n"
        "time.sleep(30)")])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        meter, idle = TreeMeter(parent.pid), TreeMeter(sleeper.pid)
        deadline = time.monotonic() + 30
        while (meter.read() or Usage(0, 0)).cpu_s < 1.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        busy = meter.read()
        assert busy is not None and busy.cpu_s >= 1.0
        quiet = idle.read()
        assert quiet is not None and quiet.cpu_s < 0.5
    finally:
        for p in (parent, sleeper):
            p.kill()
            p.wait()


CPU_ROOT = Path("/sys/fs/cgroup/cpu")
CPUACCT_ROOT = Path("/sys/fs/cgroup/cpuacct")


def _v1_writable() -> bool:
    return all(os.access(p, os.W_OK) and (p / "cgroup.procs").is_file()
               for p in (CPU_ROOT, CPUACCT_ROOT))


@pytest.mark.skipif(not _v1_writable() or not schedstat_works(),
                    reason="needs writable cgroup v1 cpu and cpuacct hierarchies and schedstat")
def test_cgroup_meter_sees_a_throttled_process_waiting_for_cpu() -> None:
    """A process held to 20 % of a CPU by a cgroup quota: does its cpuacct meter show it
    used about 1 CPU second in ~5 s, and the run-queue delay show it was runnable (not idle)
    for most of the rest, which is what tells a starved worker from a sleeping one?"""
    name = f"torchgrade-test-{uuid.uuid4().hex[:8]}"
    cpu, acct = CPU_ROOT / name, CPUACCT_ROOT / name
    cpu.mkdir()
    acct.mkdir()
    try:
        (cpu / "cpu.cfs_period_us").write_text("100000")
        (cpu / "cpu.cfs_quota_us").write_text("20000")
        proc = subprocess.Popen(["/bin/sh", "-c", f"echo $$ > {cpu}/cgroup.procs && "
                                 f"echo $$ > {acct}/cgroup.procs && exec \"$@\"", "sh",
                                 sys.executable, "-c",
                                 "import time\nt = time.process_time()\n"
                                 "while time.process_time() - t < 1.0: pass"])
        meter = CgroupMeter(acct)
        started = time.monotonic()
        last = Usage(0.0, 0.0)
        while proc.poll() is None:
            last = meter.read() or last  # the meter never runs backwards
            time.sleep(0.05)
        wall = time.monotonic() - started
        assert wall > 3.0, "the quota did not slow the process down"
        assert 0.9 <= last.cpu_s <= 1.5
        assert last.delay_s is not None and last.delay_s > 0.5 * (wall - last.cpu_s - 1.0)
    finally:
        for group in (cpu, acct):
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def test_a_worker_that_lowers_its_own_priority_is_seen() -> None:
    """A process that raised its own nice value (or took SCHED_IDLE) starves itself: does the
    meter see it, so that starving is not blamed on the machine, and not see it otherwise?"""
    niced = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\nos.nice(5)\nprint('ready', flush=True)\ntime.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    plain = subprocess.Popen([sys.executable, "-c", "print('ready', flush=True)\n"
                              "import time; time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        for p in (niced, plain):
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        assert TreeMeter(niced.pid).deprioritised()
        assert not TreeMeter(plain.pid).deprioritised()
    finally:
        for p in (niced, plain):
            p.kill()
            p.wait()
