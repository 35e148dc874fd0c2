"""Is every shipped grader fair, and does it catch mutants of its reference?

The CI form of ``torchgrade audit`` on every assignment under graders/ (the ``shipped_audit``
fixture of tests/conftest.py): one run of the reference, the stub, the stub's four degenerate
twins (each must score 0: a non-answer earns nothing) and every example (the training checks
only where they are claimed), and a small budget of mutants graded without training. The same
run's example reports feed tests/test_example_submissions.py, which also grades one example
twice for determinism; the audit's own repeated-run comparison is tested on the toy course
(tests/test_audit.py). The mutation score is printed (``pytest -s``) for the record, and at
least one mutant must be caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgrade.assignment import available
from torchgrade.twins import KINDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", available(ROOT))
def test_shipped_grader_is_fair(name: str, shipped_audit) -> None:
    result, _ = shipped_audit(name)
    problems = [f"{f.subject}: {f.message}" for f in result.findings if f.verdict != "ok"]
    assert not problems, "\n".join(problems)
    killed = sum(m.killed for m in result.mutants)
    print(f"\n{name}: mutants caught {killed}/{len(result.mutants)}; survivors: "
          + "; ".join(m.description for m in result.mutants if not m.killed))
    assert len(result.mutants) == result.options["mutants"] > 0
    assert killed >= 1
    # the twins ran (their findings above hold each to zero)
    assert [t.student for t in result.twins] == [f"twin-{kind}" for kind in KINDS]
