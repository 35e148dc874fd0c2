"""Merge the reports of a roster graded in shards (``torchgrade grade --shard I/N``).

    python ci/merge_shards.py ASSIGNMENT SHARD_DIR... --out MERGED

Each SHARD_DIR is one shard's ``--out`` folder (``<student>/<assignment>.json`` and the rest).
Every student folder is copied into MERGED, then the class CSV and the class summary page are
written again from all the reports together, exactly as one unsharded ``torchgrade grade``
would write them. A student found in two shards is an error (shards never overlap).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from torchgrade.render import write_class_csv
from torchgrade.render.summary import write_class_summary
from torchgrade.report import read_report


def merge(assignment: str, shards: list[Path], out: Path) -> int:
    reports = {}
    for shard in shards:
        for path in sorted(shard.glob(f"*/{assignment}.json")):
            student = path.parent.name
            if student in reports:
                raise SystemExit(f"{student} is in two shards ({shard}): were the shards of "
                                 "one roster graded with the same N?")
            reports[student] = read_report(path)  # validates the schema
            shutil.copytree(path.parent, out / student, dirs_exist_ok=True)
    if not reports:
        raise SystemExit(f"no {assignment}.json report under {', '.join(map(str, shards))}")
    ordered = [reports[s] for s in sorted(reports)]
    write_class_csv(ordered, out / f"{assignment}.csv")
    write_class_summary(ordered, out / f"{assignment}-summary.html")
    return len(ordered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("shards", nargs="+", type=Path, help="each shard's --out folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    count = merge(args.assignment, args.shards, args.out)
    print(f"merged {count} report(s) from {len(args.shards)} shard(s): "
          f"{args.out}/{args.assignment}.csv, {args.out}/{args.assignment}-summary.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
