"""Does the class summary page show the class's results, and flag a grader nobody passes?

The numbers are pinned on made-up reports; then the page is opened in real headless Chromium
(installed by the Makefile) and its screenshot is checked for the four plots' bars, each plot
having its own colour.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from torchgrade.render.summary import render_class_summary, summarise, write_class_summary
from torchgrade.report import CheckResult, Report

COLOURS = {"scores": (0x15, 0x65, 0xC0), "pass rate": (0x2E, 0x7D, 0x32),
           "runtime": (0x6D, 0x4C, 0x41), "failed": (0xC6, 0x28, 0x28),
           "timeout": (0xEF, 0x6C, 0x00)}


def _report(student: str, statuses: dict[str, str], duration: float = 1.0,
            error: str = "") -> Report:
    checks = tuple(CheckResult(name=n, status=s, points=10.0 if s == "passed" else 0.0,
                               max_points=10.0, visibility="public", kind="value",
                               feedback="" if s == "passed" else "x")
                   for n, s in statuses.items())
    return Report(student=student, assignment="nt_xent", score=sum(c.points for c in checks),
                  max_score=10.0 * len(checks), profile="cpu", device="cpu", sandbox="none",
                  submission_sha256="", grader_version="1", duration_s=duration, checks=checks,
                  created_at="", torchgrade_version="", submission_error=error)


def _class() -> list[Report]:
    return [
        _report("alice", {"a": "passed", "b": "passed", "broken": "failed"}, 12.0),
        _report("bob", {"a": "passed", "b": "failed", "broken": "failed"}, 30.5),
        _report("carol", {"a": "timeout", "b": "error", "broken": "error"}, 60.0,
                error="SyntaxError"),
        _report("dave", {"a": "passed", "b": "passed", "broken": "failed"}, 8.0),
    ]


def test_summary_numbers():
    """Histogram, pass rates, the never-passed check, slowest first, failures by status."""
    s = summarise(_class())
    assert s.students == 4 and s.submission_problems == 1
    assert [b.value for b in s.histogram] == [1, 0, 0, 1, 0, 0, 2, 0, 0, 0]
    assert s.mean_percent == pytest.approx(41.7, abs=0.05)
    assert {b.label: b.value for b in s.pass_rates} == {"a": 75.0, "b": 50.0, "broken": 0.0}
    assert s.broken_checks == ("broken",)
    assert [b.label for b in s.durations] == ["carol", "bob", "alice", "dave"]
    parts = {f.label: {status: n for status, n, _ in f.parts} for f in s.failures}
    assert parts == {"a": {"timeout": 1}, "b": {"failed": 1, "error": 1},
                     "broken": {"failed": 3, "error": 1}}
    with pytest.raises(ValueError, match="no reports"):
        summarise([])


def test_summary_page_is_self_contained_and_flags_the_broken_check():
    page = render_class_summary(_class())
    assert "default-src 'none'" in page and "<script" not in page
    assert "No submission passed: broken." in page
    for plot in ("plot-scores", "plot-pass-rate", "plot-runtime", "plot-failures"):
        assert f'id="{plot}"' in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (make installs it: "
                    "apt-get install chromium)")
def test_summary_page_shows_its_plots_in_chromium(tmp_path: Path):
    """Rendered by a real browser, does every plot appear (its bars' colour on screen)?"""
    page = write_class_summary(_class(), tmp_path / "summary.html")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1000,2200", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)  # [H, W, 3]
    counts = {name: int((np.abs(pixels - np.array(colour)).max(axis=-1) <= 6).sum())
              for name, colour in COLOURS.items()}
    # Each plot's bars cover at least a few hundred pixels (a bar is ~16 px high).
    assert all(n > 300 for n in counts.values()), counts
