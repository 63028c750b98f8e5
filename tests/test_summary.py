"""The closing lines of a sweep (conformance.summary) and the notice of each
failure as it arrives (plugin/terminal.py): pure functions of the records."""

from __future__ import annotations

from conformance import summary
from conformance.plugin.terminal import is_case, notice


def rec(case, status, target="linux", family="ipv4", requirement="R-1", level="MUST", **extra):
    return {"case": case, "target": target, "family": family, "status": status,
            "requirement": requirement, "level": level, "expected": "ACK",
            "actual": "nothing", "reason": "", **extra}


def both(case, status, **extra):
    return [rec(case, status, family=family, **extra) for family in ("ipv4", "ipv6")]


def grouped(lines: list[str]) -> list[str]:
    return lines[lines.index(summary.GROUPS_TITLE) + 1:]


def test_a_case_is_counted_once_whatever_its_families():
    records = both("c.fails", "fail") + both("c.passes", "pass")
    lines = summary.closing_summary(records, ["linux"])
    assert lines[:2] == ["linux  NON-CONFORMANT: 2 failed", "       4 checks, 2 passed, 2 failed"]
    assert grouped(lines) == ["  FAIL  R-1 (MUST)",
                              "         linux  1 case: c.fails",
                              "                expected ACK",
                              "                actual   nothing"]


def test_a_family_alone_is_named():
    records = both("c.one", "pass")
    records[1]["status"] = "warn"
    records[1]["level"] = "SHOULD"
    assert grouped(summary.closing_summary(records, ["linux"])) == [
        "  WARN  R-1 (SHOULD)  linux: 1 case: c.one [ipv6]"]


def test_groups_are_by_requirement_and_stack_largest_first():
    records = (both("a", "warn", requirement="R-small", level="SHOULD")
               + both("b", "warn", requirement="R-big", level="SHOULD")
               + both("c", "warn", requirement="R-big", level="SHOULD")
               + both("c", "warn", requirement="R-big", level="SHOULD", target="lwip"))
    assert grouped(summary.closing_summary(records, ["linux", "lwip"])) == [
        "  WARN  R-big (SHOULD)",
        "         linux  2 cases: b, c",
        "         lwip   1 case: c",
        "  WARN  R-small (SHOULD)  linux: 1 case: a"]


def test_warnings_beyond_a_screen_point_to_the_report():
    records = [rec(f"c{i}", "warn", requirement=f"R-{i:02}", level="SHOULD")
               for i in range(summary.QUIET_GROUPS + 3)]
    lines = grouped(summary.closing_summary(records, ["linux"]))
    assert len(lines) == summary.QUIET_GROUPS + 1
    assert lines[-1] == "  ... 3 more groups of 3 cases: the report lists them"


def test_lines_fit_the_width_but_an_error_is_said_whole():
    reason = "invalid case file: cases/x.yaml:7: steps[1].silence: " + "expected a duration " * 9
    records = [rec("a-very-long-case-name." + "x" * 80, "warn", level="SHOULD"),
               rec("x.yaml", "error", target="", family="", reason=reason)]
    lines = summary.closing_summary(records, width=60)
    assert all(len(line) <= 60 for line in lines if "ERROR" not in line)
    assert f"  ERROR x.yaml: {reason.strip()}" in lines
    shared = [rec(f"c{i}", "error", reason=reason) for i in range(2)]
    assert f"  ERROR {reason.strip()}" in summary.closing_summary(shared, width=60)


def test_a_failure_the_baseline_lists_against_another_requirement_says_so():
    records = [rec("c", "fail", baseline={"where": "linux.yaml:3", "reason": "r",
                                          "requirement": "R-other"})]
    assert "the baseline lists it against R-other (linux.yaml:3)" in "\n".join(
        summary.closing_summary(records, ["linux"]))


def test_one_known_deviation_is_singular():
    assert summary.stack_verdict(summary.tally([rec("c", "known")])["linux"]) == \
        "MATCHES ITS BASELINE: 1 known deviation"


def test_a_notice_is_one_line_naming_stack_case_family_and_requirement():
    assert notice(rec("c.x", "fail", family="ipv6", actual="RST")) == \
        "FAIL  linux  c.x[ipv6]  R-1 (MUST): RST"
    assert notice(rec("c.x", "error", reason="agent died\ntraceback")) == \
        "ERROR linux  c.x[ipv4]: agent died"
    assert notice(rec("c.x", "fixed")) == \
        "FIXED linux  c.x[ipv4]  R-1 (MUST): passes now: out of the baseline"


def test_only_case_file_items_change_the_terminal():
    assert is_case("cases/rst/a.yaml::rst.a[ipv4]")
    assert not is_case("tests/test_x.py::test_y") and not is_case("cases/rst/a.yaml")
