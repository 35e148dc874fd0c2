"""Renderers: every human- or machine-facing format, made from the one JSON report.

The JSON report (:mod:`torchgrade.report`) is the single source of truth for a graded
submission. Students, course staff and other tools each want a different view of it: an HTML
page, Gradescope's ``results.json``, JUnit XML for CI dashboards, a class-wide CSV for the
gradebook. Keeping those views here, as pure functions of :class:`~torchgrade.report.Report`,
means a renderer can never disagree with the report it was made from, and any of them can be
regenerated later from the stored JSON without grading again. All ``write_*`` functions write
atomically, like the report itself.
"""

from __future__ import annotations

from torchgrade.render.csv_ import write_class_csv
from torchgrade.render.gradescope import to_gradescope, write_gradescope
from torchgrade.render.html import render_student_html, write_student_html
from torchgrade.render.junit import to_junit_xml, write_junit

__all__ = [
    "render_student_html",
    "to_gradescope",
    "to_junit_xml",
    "write_class_csv",
    "write_gradescope",
    "write_junit",
    "write_student_html",
]
