"""The leaderboard's files: a CSV and a page safe to publish to the class.

The page shows only the names the leaderboard shows (pseudonyms or anonymous names, unless
the instructor turned real names on), one table per (check, metric), best first. Pseudonyms
are student-chosen text: the page is rendered with autoescaping, and the CSV guards every
cell against spreadsheet formulas as the class CSV does.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from torchgrade.leaderboard import CSV_COLUMNS, Leaderboard, to_rows
from torchgrade.render.csv_ import _safe
from torchgrade.render.html import _environment
from torchgrade.report import atomic_write_text


def render_leaderboard_html(board: Leaderboard) -> str:
    return _environment().get_template("leaderboard.html.j2").render(board=board)


def write_leaderboard(board: Leaderboard, out_dir: Path) -> tuple[Path, Path]:
    """``OUT/<assignment>-leaderboard.csv`` and ``.html``, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in to_rows(board):
        writer.writerow({k: _safe(v) for k, v in row.items()})
    csv_path = out_dir / f"{board.assignment}-leaderboard.csv"
    html_path = out_dir / f"{board.assignment}-leaderboard.html"
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(html_path, render_leaderboard_html(board))
    return csv_path, html_path
