"""Tests for the renderers: each output format says what the JSON report says, and no more.

The reports are built here; one covers every status and both visibilities, the other carries a
submission error and hostile text (markup, NUL, ESC, spreadsheet formulas) such as student code
could produce.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from torchgrade import render
from torchgrade.render import (
    render_student_html,
    to_gradescope,
    to_junit_xml,
    write_class_csv,
    write_gradescope,
    write_junit,
    write_student_html,
)
from torchgrade.report import CheckResult, Report

HOSTILE = "<script>alert(1)</script>\x00\x1b[31m red"
SECRET = "SECRET-hidden-input-x=42"
SHA = "ab" * 32


def _check(name: str, status: str, points: float, max_points: float, visibility: str = "public",
           kind: str = "value", feedback: str = "", catches: str = "") -> CheckResult:
    return CheckResult(
        name=name, status=status, points=points, max_points=max_points, visibility=visibility,
        kind=kind, feedback=feedback, description=f"verifies {name}", catches=catches,
        duration_s=0.25,
    )


def _report(student: str, checks: list[CheckResult], **overrides: object) -> Report:
    fields: dict[str, object] = dict(
        student=student, assignment="hw1", score=sum(c.points for c in checks),
        max_score=sum(c.max_points for c in checks), profile="cpu", device="cpu",
        sandbox="bubblewrap+rlimits", submission_sha256=SHA, grader_version="g-1.2",
        duration_s=3.5, checks=tuple(checks), created_at="2025-01-02T03:04:05Z",
        torchgrade_version="0.1.0",
    )
    fields.update(overrides)
    report = Report(**fields)  # type: ignore[arg-type]
    report.validate()
    return report


@pytest.fixture
def full() -> Report:
    """Every status, both visibilities: 2 of 10 points."""
    return _report("alice", [
        _check("test_shape_ok", "passed", 2, 2, kind="shape", catches="PASSED-CATCHES"),
        _check("test_values_close", "failed", 0, 3, feedback="expected 1.0\ngot 2.0",
               catches="an off-by-one in the sum"),
        _check("test_hidden_invariant", "failed", 0, 2, "hidden", "invariant",
               feedback=SECRET, catches=f"catches {SECRET}"),
        _check("test_training_loss", "error", 0, 1, kind="training",
               feedback="RuntimeError: boom"),
        _check("test_robust_timeout", "timeout", 0, 1, "hidden", "robustness",
               feedback=f"ran past 10 s on {SECRET}"),
        _check("test_gpu_only", "skipped", 0, 1, kind="shape", feedback="needs a GPU"),
    ], student_output=f"epoch 1 loss 0.5 {SECRET}")


@pytest.fixture
def hostile() -> Report:
    """A broken submission whose error, feedback and output are attacker-controlled."""
    return _report("=mallory", [
        _check("test_values_close", "error", 0, 3, feedback=HOSTILE),
        _check("test_only_in_second", "passed", 1, 1, kind="shape"),
    ], submission_error=f"+SyntaxError {HOSTILE}", student_output=f"</pre>{HOSTILE}",
        submission_sha256="")


# --- HTML ---------------------------------------------------------------------------------


class _Collector(HTMLParser):
    """Records the tags of a page and the text inside its <pre> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.pre_texts: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_pre = self._in_pre or tag == "pre"
        if tag == "pre":
            self.pre_texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pre_texts[-1] += data


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def test_html_escapes_hostile_markup_so_it_shows_as_text(hostile: Report) -> None:
    html = render_student_html(dataclasses.replace(hostile, visibility="public"))
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = _parse(html)
    assert "script" not in page.tags
    assert any("<script>alert(1)</script>" in text for text in page.pre_texts)
    assert any(text.startswith("</pre>") for text in page.pre_texts)  # output did not close it


def test_html_strips_nul_and_escape_characters(hostile: Report) -> None:
    html = render_student_html(hostile)
    assert "\x00" not in html and "\x1b" not in html
    assert "[31m red" in html


def test_html_shows_submission_error_above_the_checks_table(hostile: Report) -> None:
    html = render_student_html(hostile)
    assert 'id="submission-error"' in html
    assert html.index("+SyntaxError") < html.index("<table")


def test_html_without_submission_error_has_no_error_banner(full: Report) -> None:
    assert 'id="submission-error"' not in render_student_html(full)


def test_html_header_shows_score_percentage_and_run_metadata(full: Report) -> None:
    html = render_student_html(full)
    assert "2 / 10" in html and "(20.0%)" in html and "width: 20.0%" in html
    for text in ("alice", "hw1", "cpu", "bubblewrap+rlimits", "g-1.2", "3.50 s",
                 "2025-01-02T03:04:05Z", SHA[:12]):
        assert text in html


def test_html_says_when_there_was_no_submission_file(hostile: Report) -> None:
    assert "(no submission file)" in render_student_html(hostile)


def test_html_table_has_a_row_per_check_with_status_colour(full: Report) -> None:
    html = render_student_html(full)
    assert _parse(html).tags.count("tr") == 1 + len(full.checks)
    for status in ("passed", "failed", "error", "timeout", "skipped"):
        assert f'class="status status-{status}"' in html
        assert f".status-{status} {{" in html  # each status has its own colour rule
    assert ".status-infrastructure {" in html


def test_html_gives_feedback_and_catches_only_for_checks_not_passed(full: Report) -> None:
    html = render_student_html(full)
    assert "This check catches: an off-by-one in the sum" in html
    assert "expected 1.0\ngot 2.0" in html
    assert "RuntimeError: boom" in html and "needs a GPU" in html
    assert "PASSED-CATCHES" not in html


def test_html_puts_student_output_in_a_details_block_for_public_runs(full: Report) -> None:
    html = render_student_html(dataclasses.replace(full, visibility="public"))
    details = html[html.index("<details>"):html.index("</details>")]
    assert "epoch 1 loss 0.5" in details


def test_html_of_a_graded_run_keeps_student_output_out(full: Report) -> None:
    """Printed output may carry hidden checks' inputs: a graded run's page never shows it."""
    assert full.visibility == "all"
    assert "epoch 1 loss 0.5" not in render_student_html(full)


def test_html_is_self_contained_without_scripts_or_remote_assets(full: Report) -> None:
    html = render_student_html(full)
    page = _parse(html)
    assert not {"script", "link", "img", "iframe"} & set(page.tags)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html


def test_write_student_html_writes_the_rendered_page_and_no_temp_files(
    full: Report, tmp_path: Path
) -> None:
    target = tmp_path / "alice" / "hw1.html"
    assert write_student_html(full, target) == target
    assert target.read_text(encoding="utf-8") == render_student_html(full)
    assert [p.name for p in target.parent.iterdir()] == ["hw1.html"]


# --- Gradescope ---------------------------------------------------------------------------

TEST_KEYS = {"score", "max_score", "name", "output", "visibility", "status", "tags"}


def test_gradescope_has_the_specified_top_level_and_test_keys(full: Report) -> None:
    result = to_gradescope(full)
    assert {"score", "execution_time", "output", "visibility", "stdout_visibility",
            "tests"} <= set(result)
    assert result["execution_time"] == pytest.approx(3.5)
    assert all(TEST_KEYS <= set(test) for test in result["tests"])
    assert [t["name"] for t in result["tests"]] == [c.name for c in full.checks]


def test_gradescope_scores_sum_to_the_report_score(full: Report) -> None:
    result = to_gradescope(full)
    assert result["score"] == full.score == sum(t["score"] for t in result["tests"])
    assert sum(t["max_score"] for t in result["tests"]) == full.max_score


def test_gradescope_maps_visibility_status_and_kind(full: Report) -> None:
    tests = {t["name"]: t for t in to_gradescope(full)["tests"]}
    assert tests["test_values_close"]["visibility"] == "visible"
    assert tests["test_hidden_invariant"]["visibility"] == "after_published"
    assert tests["test_shape_ok"]["status"] == "passed"
    assert {tests[n]["status"] for n in tests if n != "test_shape_ok"} == {"failed"}
    assert tests["test_training_loss"]["tags"] == ["training"]


def test_gradescope_hidden_checks_leak_no_feedback_or_output(full: Report) -> None:
    result = to_gradescope(full)
    assert SECRET not in json.dumps(result)
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["test_hidden_invariant"]["output"] == "hidden check: failed"
    assert tests["test_robust_timeout"]["output"] == "hidden check: timeout"
    assert result["stdout_visibility"] == "hidden"


def test_gradescope_public_failures_carry_feedback_and_catches(full: Report) -> None:
    tests = {t["name"]: t for t in to_gradescope(full)["tests"]}
    output = tests["test_values_close"]["output"]
    assert "expected 1.0\ngot 2.0" in output
    assert "This check catches: an off-by-one in the sum" in output
    assert "PASSED-CATCHES" not in tests["test_shape_ok"]["output"]


def test_gradescope_declares_plain_text_and_reports_submission_error(hostile: Report) -> None:
    result = to_gradescope(hostile)
    assert result["output_format"] == result["test_output_format"] == "text"
    assert all(t["output_format"] == "text" for t in result["tests"])
    assert "+SyntaxError" in result["output"]


def test_gradescope_strips_nul_and_escape_characters(hostile: Report) -> None:
    text = json.dumps(to_gradescope(hostile), ensure_ascii=False)
    assert "\x00" not in text and "\x1b" not in text
    assert "<script>alert(1)</script>[31m red" in text


def test_write_gradescope_writes_the_same_document_as_json(hostile: Report, tmp_path: Path) -> None:
    target = tmp_path / "results" / "results.json"
    assert write_gradescope(hostile, target) == target
    assert json.loads(target.read_text(encoding="utf-8")) == to_gradescope(hostile)


# --- JUnit --------------------------------------------------------------------------------


def test_junit_counts_failures_errors_timeouts_and_skips(full: Report) -> None:
    root = ET.fromstring(to_junit_xml(full).encode("utf-8"))
    suite = root.find("testsuite")
    assert suite is not None
    expected = {"tests": "6", "failures": "2", "errors": "2", "skipped": "1"}
    for element in (root, suite):
        assert {k: element.get(k) for k in expected} == expected
    assert len(suite.findall("testcase/failure")) == 2
    assert len(suite.findall("testcase/error")) == 2
    assert len(suite.findall("testcase/skipped")) == 1
    passed = suite.find("testcase[@name='test_shape_ok']")
    assert passed is not None and len(passed) == 0


def test_junit_timeout_is_an_error_whose_message_says_timeout(full: Report) -> None:
    suite = ET.fromstring(to_junit_xml(full)).find("testsuite")
    assert suite is not None
    error = suite.find("testcase[@name='test_robust_timeout']/error")
    assert error is not None and error.get("type") == "timeout"
    assert "timeout" in (error.get("message") or "")
    plain = suite.find("testcase[@name='test_training_loss']/error")
    assert plain is not None and plain.get("type") == "error"


def test_junit_names_suite_classname_times_and_properties(full: Report) -> None:
    suite = ET.fromstring(to_junit_xml(full)).find("testsuite")
    assert suite is not None
    assert suite.get("name") == "torchgrade.hw1"
    assert float(suite.get("time") or "nan") == pytest.approx(3.5)
    for case in suite.iter("testcase"):
        assert case.get("classname") == "hw1.alice"
        assert float(case.get("time") or "nan") == pytest.approx(0.25)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert float(props["score"] or "nan") == 2
    assert float(props["max_score"] or "nan") == 10
    assert (props["sandbox"], props["profile"]) == ("bubblewrap+rlimits", "cpu")


def test_junit_strips_xml_illegal_characters_but_keeps_markup_as_text(hostile: Report) -> None:
    xml = to_junit_xml(hostile)
    assert "\x00" not in xml and "\x1b" not in xml
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    error = suite.find("testcase[@name='test_values_close']/error")
    assert error is not None and "<script>alert(1)</script>[31m red" in (error.text or "")
    assert "</pre><script>" in (suite.findtext("system-out") or "")
    assert suite.find("testcase[@name='test_values_close']/error/script") is None


def test_write_junit_writes_parseable_xml(full: Report, tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    assert write_junit(full, target) == target
    assert ET.parse(target).getroot().tag == "testsuites"


# --- CSV ----------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_csv_has_one_row_per_student_sorted_with_check_columns_in_first_seen_order(
    full: Report, hostile: Report, tmp_path: Path
) -> None:
    target = write_class_csv([full, hostile], tmp_path / "class.csv")
    header, rows = _read_csv(target)
    assert header[:14] == [
        "student", "assignment", "score", "max_score", "percent", "passed", "failed", "error",
        "timeout", "skipped", "duration_s", "sandbox", "submission_sha256", "submission_error",
    ]
    # sorted: "'=mallory" ("=" < "a") comes first, so its checks are seen first
    assert [r["student"] for r in rows] == ["'=mallory", "alice"]
    assert header[14] == "infrastructure"  # checks an overloaded machine could not grade
    assert header[15:] == ["test_values_close", "test_only_in_second", "test_shape_ok",
                           "test_hidden_invariant", "test_training_loss",
                           "test_robust_timeout", "test_gpu_only"]


def test_csv_round_trips_scores_counts_and_points(
    full: Report, hostile: Report, tmp_path: Path
) -> None:
    _, rows = _read_csv(write_class_csv([full, hostile], tmp_path / "class.csv"))
    alice = rows[1]
    assert (float(alice["score"]), float(alice["max_score"]), float(alice["percent"])) == (
        2.0, 10.0, 20.0)
    assert [alice[s] for s in ("passed", "failed", "error", "timeout", "skipped")] == [
        "1", "2", "1", "1", "1"]
    assert float(alice["test_shape_ok"]) == 2.0 and float(alice["test_values_close"]) == 0.0
    assert alice["test_only_in_second"] == ""  # check alice never ran: empty, not 0
    assert alice["submission_sha256"] == SHA and alice["duration_s"] == "3.500"


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_quotes_cells_that_a_spreadsheet_would_run_as_formulas(
    prefix: str, tmp_path: Path
) -> None:
    report = _report(f"{prefix}cmd|' /C calc'!A0", [_check("test_a", "error", 0, 1)],
                     submission_error=f"{prefix}HYPERLINK(\"x\")")
    _, rows = _read_csv(write_class_csv([report], tmp_path / "class.csv"))
    assert rows[0]["student"] == f"'{prefix}cmd|' /C calc'!A0"
    assert rows[0]["submission_error"] == f"'{prefix}HYPERLINK(\"x\")"


def test_csv_keeps_multiline_error_and_strips_control_characters(
    hostile: Report, tmp_path: Path
) -> None:
    report = _report("bob", list(hostile.checks), submission_error="line one\nline <two>\x00\x1b")
    _, rows = _read_csv(write_class_csv([report], tmp_path / "class.csv"))
    assert rows[0]["submission_error"] == "line one\nline <two>"


def test_csv_is_written_atomically_without_leftover_temp_files(
    full: Report, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "class.csv"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    assert write_class_csv([full], target) == target
    assert [p.name for p in target.parent.iterdir()] == ["class.csv"]
    assert target.read_text(encoding="utf-8").startswith("student,")


def test_render_package_reexports_every_renderer() -> None:
    assert set(render.__all__) == {
        "render_student_html", "write_student_html", "to_gradescope", "write_gradescope",
        "to_junit_xml", "write_junit", "write_class_csv",
    }
    assert all(callable(getattr(render, name)) for name in render.__all__)
