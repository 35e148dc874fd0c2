"""The self-contained runner image: its size, its build, and what a worker in it costs.

Starts a private ``dockerd`` on the data root the Docker executor's tests keep
(``/var/tmp/torchgrade-test-docker``, so the image they built is reused), builds or reuses
``torchgrade-runner:self`` (``torchgrade.isolation.runner_image``) and
``torchgrade-runner:local``, then times, ``--repeats`` times each, a student worker from start
until it has imported the toy reference and answered (``WorkerClient.start`` to
``ensure_loaded``): in a container of each image, fresh under bubblewrap, and forked from the
worker template. Needs root and docker.io (as the tests do). Never a timed assert.

    sudo .venv/bin/python benchmarks/runner_image.py --repeats 5
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from torchgrade.assignment import load  # noqa: E402
from torchgrade.isolation import docker, runner_image  # noqa: E402
from torchgrade.isolation.base import TEMPLATE_ENV  # noqa: E402
from torchgrade.proxy import WorkerClient  # noqa: E402

KEEP = Path(os.environ.get("TORCHGRADE_TEST_DOCKER", "/var/tmp/torchgrade-test-docker"))
COURSE = ROOT / "tests" / "toy_course"


def start_engine(base: Path) -> subprocess.Popen:
    host = f"unix://{base}/docker.sock"
    proc = subprocess.Popen(["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
                             "--data-root", str(KEEP / "data"), "--exec-root",
                             str(base / "exec"), "--host", host, "--pidfile",
                             str(base / "d.pid"), "--log-level", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    os.environ["DOCKER_HOST"] = host
    for _ in range(150):
        if subprocess.run(["docker", "version"], capture_output=True).returncode == 0:
            return proc
        time.sleep(0.2)
    raise SystemExit("dockerd did not answer")


def time_workers(mode: str, repeats: int, image: str | None = None) -> list[float]:
    a = load("toy", COURSE)
    if image:
        os.environ[docker.IMAGE_ENV] = image
        docker.image_runtime.cache_clear()
    times = []
    for _ in range(repeats):
        client = WorkerClient(COURSE / "solutions" / "toy" / "toy.py", "toy", limits=a.limits,
                              mode=mode)  # type: ignore[arg-type]
        try:
            started = time.perf_counter()
            client.start()
            client.ensure_loaded()
            times.append(time.perf_counter() - started)
            level = client.level
        finally:
            client.close()
    print(f"  {mode:<6} {image or '':<24} {level:<60} median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})", flush=True)
    os.environ.pop(docker.IMAGE_ENV, None)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runner_image.json")
    args = parser.parse_args()
    KEEP.mkdir(parents=True, exist_ok=True)
    lock = (KEEP / "lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    base = Path(tempfile.mkdtemp(prefix="tgbench-", dir="/tmp"))
    engine = start_engine(base)
    try:
        built = runner_image.build(ROOT, log=lambda line: print(f"  {line}", flush=True))
        docker.build_image()
        print(f"{built.tag}: {built.size_bytes / 2**30:.2f} GiB, base "
              f"{'built' if built.base_built else 'reused'}, {built.seconds:.0f} s")
        result = {"image": built.tag, "size_gib": round(built.size_bytes / 2**30, 2),
                  "build_s": round(built.seconds, 1), "base_built": built.base_built,
                  "load1": os.getloadavg()[0]}
        print("worker start until the toy reference is imported and answering:")
        result["docker_self_s"] = time_workers("docker", args.repeats, built.tag)
        result["docker_local_s"] = time_workers("docker", args.repeats, docker.DEFAULT_IMAGE)
        result["bwrap_fresh_s"] = time_workers("bwrap", args.repeats)
        from torchgrade.isolation.template import socket_for

        os.environ[TEMPLATE_ENV] = socket_for(False, ())
        result["bwrap_template_s"] = time_workers("bwrap", args.repeats)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written {args.out}")
    finally:
        engine.terminate()
        engine.wait(timeout=60)
        subprocess.run(["umount", "-R", str(base / "exec")], capture_output=True)


if __name__ == "__main__":
    main()
