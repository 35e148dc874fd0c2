"""Does `--shard I/N` split a roster so that every student is graded exactly once?"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from torchgrade.batch import in_shard, parse_shard

TOY = Path(__file__).resolve().parent / "toy_course"
NAMES = [f"student{i:03d}" for i in range(300)] + ["a.b@c", "zoë"]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_every_student_is_in_exactly_one_shard(n: int):
    for name in NAMES:
        assert sum(in_shard(name, (i, n)) for i in range(1, n + 1)) == 1
    sizes = [sum(in_shard(s, (i, n)) for s in NAMES) for i in range(1, n + 1)]
    assert min(sizes) > 0.6 * len(NAMES) / n  # roughly balanced


def test_a_student_keeps_their_shard_when_the_roster_changes():
    """The shard depends on the name alone, not on the position in the roster."""
    before = {s: [i for i in range(1, 5) if in_shard(s, (i, 4))] for s in NAMES}
    assert before == {s: [i for i in range(1, 5) if in_shard(s, (i, 4))]
                      for s in reversed(NAMES)}


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_bad_shards_are_refused_with_the_expected_form(text: str):
    with pytest.raises(ValueError, match="I/N with 1 <= I <= N"):
        parse_shard(text)
    assert parse_shard(" 2 / 4 ") == (2, 4)


def test_cli_refuses_a_bad_shard_before_grading(tmp_path: Path):
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "torchgrade", "--root", str(TOY), "grade", "toy",
         str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--shard", "3/2"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--shard must be I/N" in proc.stderr
    assert not (tmp_path / "out").exists()
