"""JUnit XML for a report, so CI dashboards and test-report viewers can show a grading run.

Built with :mod:`xml.etree.ElementTree`, which escapes markup; characters that XML 1.0 cannot
carry at all (NUL, ESC, other C0 controls, lone surrogates, U+FFFE/U+FFFF) are stripped first,
since student output may contain any of them and one would make the whole file unparseable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from torchgrade.report import CheckResult, Report, atomic_write_text

# Everything outside XML 1.0's Char production:
# #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: object) -> str:
    return _ILLEGAL_XML.sub("", str(value))


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _outcome(check: CheckResult) -> ET.Element | None:
    """The child element saying how ``check`` went, or None when it passed."""
    first = _first_line(check.feedback)
    if check.status == "passed":
        return None
    if check.status == "failed":
        element = ET.Element("failure", type="failed", message=first or "check failed")
    elif check.status == "timeout":
        message = f"timeout: {first}" if first else "timeout: the check ran past its time limit"
        element = ET.Element("error", type="timeout", message=message)
    elif check.status == "error":
        element = ET.Element("error", type="error", message=first or "check raised an error")
    else:
        element = ET.Element("skipped", message=first or "skipped")
    parts = [check.feedback] + ([f"This check catches: {check.catches}"] if check.catches else [])
    element.text = "\n\n".join(p for p in parts if p)
    return element


def _testcase(report: Report, check: CheckResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        name=check.name,
        classname=f"{report.assignment}.{report.student}",
        time=_seconds(check.duration_s),
    )
    outcome = _outcome(check)
    if outcome is not None:
        case.append(outcome)
    return case


def _properties(report: Report) -> ET.Element:
    props = ET.Element("properties")
    values = {
        "student": report.student,
        "score": report.score,
        "max_score": report.max_score,
        "sandbox": report.sandbox,
        "profile": report.profile,
        "device": report.device,
        "submission_sha256": report.submission_sha256,
        "grader_version": report.grader_version,
        "torchgrade_version": report.torchgrade_version,
        "submission_error": report.submission_error,
    }
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=str(value))
    return props


def _counts(report: Report) -> dict[str, str]:
    statuses = [c.status for c in report.checks]
    return {
        "tests": str(len(statuses)),
        "failures": str(statuses.count("failed")),
        "errors": str(statuses.count("error") + statuses.count("timeout")),
        "skipped": str(statuses.count("skipped") + statuses.count("infrastructure")),
        "time": _seconds(report.duration_s),
    }


def _sanitise(element: ET.Element) -> None:
    """Strip XML-illegal characters from every attribute and text node under ``element``."""
    for node in element.iter():
        node.attrib = {k: _xml_text(v) for k, v in node.attrib.items()}
        if node.text is not None:
            node.text = _xml_text(node.text)


def to_junit_xml(report: Report) -> str:
    """The JUnit XML document (``testsuites`` > ``testsuite`` > ``testcase``) for ``report``."""
    counts = _counts(report)
    root = ET.Element("testsuites", name="torchgrade", **counts)
    suite = ET.SubElement(
        root, "testsuite", name=f"torchgrade.{report.assignment}",
        timestamp=report.created_at, **counts,
    )
    suite.append(_properties(report))
    suite.extend(_testcase(report, c) for c in report.checks)
    if report.student_output:
        ET.SubElement(suite, "system-out").text = report.student_output
    _sanitise(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: Report, path: Path) -> Path:
    """Write the JUnit XML for ``report`` to ``path`` atomically; return ``path``."""
    path = Path(path)
    atomic_write_text(path, to_junit_xml(report))
    return path
