"""The class leaderboard: every metric a training check measured, ranked across the batch.

Training checks record what they measured as data (``checks.measured``: a metric's name, its
value, the threshold to pass and which way is better), and each report keeps it in
``extra["measured"][check]``. After a batch, :func:`build` ranks the class on each (check,
metric) pair and :func:`apply` writes every student's own ranks into their report
(``extra["leaderboard"]``, shown on their page and in Gradescope's ``leaderboard``).

Students appear under a name of their choosing (the first line of ``pseudonym.txt`` in their
submission folder), or else under a stable anonymous name: a keyed hash of their folder name
whose key is kept in the reports folder (``.leaderboard-key``), so the name stays the same
from one batch to the next and cannot be turned back into the folder name by someone who
lacks the key. Real folder names are shown only when the instructor asks (``names=True``).
Values are ranked with ties sharing a rank ("1, 2, 2, 4"); a submission whose value is not a
finite number (a NaN accuracy) is left off that metric's table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchgrade.report import Report

PSEUDONYM_FILE = "pseudonym.txt"
KEY_FILE = ".leaderboard-key"
_ALLOWED = re.compile(r"[^A-Za-z0-9 _.\-]+")
MAX_NAME = 24


@dataclasses.dataclass(frozen=True)
class Entry:
    rank: int
    name: str  # as shown: pseudonym, anonymous name, or the folder name
    student: str  # the folder name (never shown unless names are on)
    value: float
    passed: bool  # the value meets the threshold


@dataclasses.dataclass(frozen=True)
class Table:
    check: str
    metric: str
    better: str  # "higher" | "lower"
    threshold: float | None
    data: str
    entries: tuple[Entry, ...]


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    assignment: str
    tables: tuple[Table, ...]
    names_shown: bool


def pseudonym(folder: Path) -> str:
    """The name a student chose (``pseudonym.txt``, first line, letters, digits, space and
    ``_.-`` only, at most 24 characters), or "" when none."""
    for path in (folder / PSEUDONYM_FILE, *(folder.glob(f"*/{PSEUDONYM_FILE}"))):
        try:
            first = path.read_text(encoding="utf-8", errors="replace").splitlines()[0]
        except (OSError, IndexError):
            continue
        name = " ".join(_ALLOWED.sub("", first).split())[:MAX_NAME].strip()
        if name:
            return name
    return ""


def _key(out_dir: Path) -> bytes:
    path = out_dir / KEY_FILE
    if not path.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip().encode()


def anonymous(student: str, key: bytes) -> str:
    return "anon-" + hmac.new(key, student.encode(), hashlib.sha256).hexdigest()[:6]


def display_names(students: Sequence[str], submissions: Path | None, out_dir: Path,
                  names: bool) -> dict[str, str]:
    """How each student appears: folder name (``names``), else their pseudonym, else an
    anonymous name; a pseudonym two students chose gets the anonymous name's tail too."""
    if names:
        return {s: s for s in students}
    key = _key(out_dir)
    chosen = {s: pseudonym(submissions / s) if submissions else "" for s in students}
    taken: dict[str, int] = {}
    for name in chosen.values():
        if name:
            taken[name.lower()] = taken.get(name.lower(), 0) + 1
    shown = {}
    for s in students:
        anon = anonymous(s, key)
        name = chosen[s]
        if not name or name.lower().startswith("anon-"):
            shown[s] = anon
        elif taken[name.lower()] > 1:
            shown[s] = f"{name} ({anon[5:]})"
        else:
            shown[s] = name
    return shown


def finite_number(value: Any) -> bool:
    """A measured value that can be ranked: a real, finite number (not a bool, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def build(reports: Sequence[Report], shown: dict[str, str], names: bool = False) -> Leaderboard:
    """Rank the class on every (check, metric) that some report measured."""
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reports:
        for check, records in (r.extra.get("measured") or {}).items():
            for rec in records if isinstance(records, list) else []:
                if isinstance(rec, dict) and isinstance(rec.get("metric"), str):
                    keys.setdefault((check, rec["metric"]), rec)
    tables = []
    for (check, metric), first in keys.items():
        better = "lower" if first.get("better") == "lower" else "higher"
        rows = []
        for r in reports:
            rec = _record(r, check, metric)
            if rec is not None and finite_number(rec.get("value")):
                rows.append((r.student, float(rec["value"]), rec.get("threshold")))
        rows.sort(key=lambda row: (-row[1] if better == "higher" else row[1],
                                   shown.get(row[0], row[0])))
        entries, rank = [], 0
        for i, (student, value, threshold) in enumerate(rows):
            if i == 0 or value != rows[i - 1][1]:
                rank = i + 1
            ok = not finite_number(threshold) or (value >= threshold if better == "higher"
                                            else value <= threshold)
            entries.append(Entry(rank, shown.get(student, student), student, value, ok))
        threshold = first.get("threshold")
        tables.append(Table(check, metric, better,
                            float(threshold) if finite_number(threshold) else None,
                            str(first.get("data", "")), tuple(entries)))
    assignment = reports[0].assignment if reports else ""
    return Leaderboard(assignment, tuple(tables), names)


def _record(report: Report, check: str, metric: str) -> dict[str, Any] | None:
    records = (report.extra.get("measured") or {}).get(check)
    for rec in records if isinstance(records, list) else []:
        if isinstance(rec, dict) and rec.get("metric") == metric:
            return rec
    return None


def own_ranks(board: Leaderboard, student: str) -> list[dict[str, Any]]:
    """What one student's page shows: their rank on each metric, under their shown name."""
    out = []
    for t in board.tables:
        for e in t.entries:
            if e.student == student:
                out.append({"check": t.check, "metric": t.metric, "rank": e.rank,
                            "of": len(t.entries), "value": e.value, "better": t.better,
                            "name": e.name})
    return out


def apply(reports: Sequence[Report], board: Leaderboard) -> list[Report]:
    """The reports with ``extra["leaderboard"]`` set to each student's own ranks (reports
    with no ranked metric are returned as they are)."""
    out = []
    for r in reports:
        ranks = own_ranks(board, r.student)
        if ranks or "leaderboard" in r.extra:
            extra = {k: v for k, v in r.extra.items() if k != "leaderboard"}
            r = dataclasses.replace(r, extra=extra | ({"leaderboard": ranks} if ranks else {}))
        out.append(r)
    return out


def from_reports(reports: Sequence[Report]) -> Leaderboard | None:
    """The leaderboard the batch wrote into ``reports`` (their ``extra["leaderboard"]``), or
    None when no report has one: pages rendered later (the class summary) need only reports."""
    shown = {}
    for r in reports:
        ranks = r.extra.get("leaderboard")
        if isinstance(ranks, list) and ranks and isinstance(ranks[0], dict):
            shown[r.student] = str(ranks[0].get("name", r.student))
    if not shown:
        return None
    ranked = [r for r in reports if r.student in shown]
    names = all(shown[s] == s for s in shown)
    return build(ranked, shown, names=names)


CSV_COLUMNS = ("check", "metric", "better", "threshold", "rank", "name", "value", "passed")


def to_rows(board: Leaderboard) -> list[dict[str, str]]:
    rows = []
    for t in board.tables:
        for e in t.entries:
            rows.append({"check": t.check, "metric": t.metric, "better": t.better,
                         "threshold": "" if t.threshold is None else f"{t.threshold:g}",
                         "rank": str(e.rank), "name": e.name, "value": f"{e.value:.6g}",
                         "passed": "yes" if e.passed else "no"})
    return rows
