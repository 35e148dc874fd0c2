"""Is every shipped grader fair, and does it catch mutants of its reference?

The quick CI form of ``torchgrade audit``: every assignment under graders/, one run, a small
mutant budget and no training checks. tests/test_example_submissions.py grades every
assignment's examples with the training checks and grades one of them twice for determinism;
the repeated-run comparison of the audit itself is tested on the toy course
(tests/test_audit.py). The mutation score is printed (``pytest -s``) for the record, and at
least one mutant must be caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgrade.assignment import available, load
from torchgrade.audit import AuditOptions, run_audit

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUICK = AuditOptions(mutants=4, repeats=1, jobs=2, skip_kinds=("training",))


@pytest.mark.parametrize("name", available(ROOT))
def test_shipped_grader_is_fair(name: str, tmp_path: Path) -> None:
    result = run_audit(load(name, ROOT), tmp_path / name, QUICK)
    problems = [f"{f.subject}: {f.message}" for f in result.findings if f.verdict != "ok"]
    assert not problems, "\n".join(problems)
    killed = sum(m.killed for m in result.mutants)
    print(f"\n{name}: mutants caught {killed}/{len(result.mutants)}; survivors: "
          + "; ".join(m.description for m in result.mutants if not m.killed))
    assert len(result.mutants) == QUICK.mutants
    assert killed >= 1
