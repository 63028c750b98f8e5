"""The report, the results file, the comparison and the exit status.

The first tests run a real sweep against the Linux stack and read what it
wrote; the pure parts (what changed between two runs, a requirement's
standing, the exit status) get fast tests over plain records.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from conformance import summary
from conformance.cli import main as cli
from conformance.compare import compare
from conformance.report import model
from conformance.requirements import load_catalogue
from conformance.results import Results, ResultsError, load_results

from .conftest import PRETEND_MUST, run_dir, sweep

DROP_SYNACK = "out:tcp flags & (syn|ack) == syn|ack drop"


def test_sweep_writes_results_and_pages(report_sweep):
    """A sweep with --report writes results.json with every verdict, the index and a
    page per record with its SVG ladder and capture; it closes with the per-stack
    summary and exit status 1."""
    report, result = report_sweep["report"], report_sweep["result"]
    out = result.stdout
    assert result.returncode == summary.NON_CONFORMANT, out
    assert "TCP conformance summary" in out
    assert "NON-CONFORMANT: 1 failed" in out and "5 checks, 4 passed, 1 failed" in out, out
    assert "expected no answer for 200ms" in out
    assert out.rstrip().splitlines()[-1] == "Exit status 1: non-conformant"

    results = load_results(report / "results.json")
    assert results.run["targets"]["linux"]["net.ipv4.tcp_invalid_ratelimit"] == "0"
    assert results.run["families"] == ["ipv4", "ipv6"] and results.run["version"]
    by_name = {(r["case"], r["family"]): r for r in results.records}
    assert {("handshake.passive-open", "ipv4"), ("handshake.passive-open", "ipv6"),
            ("t.must-fails", "ipv4")} <= set(by_name) and len(by_name) == 5
    failed = by_name[("t.must-fails", "ipv4")]
    assert failed["status"] == "fail" and failed["requirement"] == "RFC9293-MUST-13"
    assert failed["expected"].startswith("no answer for 200ms") and "ACK" in failed["actual"]
    passed = by_name[("handshake.passive-open", "ipv6")]
    assert passed["status"] == "pass" and passed["states"][0] == "LISTEN"
    segments = [e for e in passed["ladder"] if e["kind"] == "segment"]
    assert segments[0]["direction"] == "out" and segments[0]["flags"] == ["SYN"]
    assert segments[1]["flags"] == ["SYN", "ACK"]
    assert (segments[1]["rel_seq"], segments[1]["rel_ack"]) == (0, 1)
    assert (report / passed["pcap"]).read_bytes()[:4] in (
        b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    assert results.cases["handshake.passive-open"]["script"][1].startswith("--> SYN")

    index = (report / "index.html").read_text()
    assert 'id="case-t.must-fails"' in index and 'data-status="fail"' in index
    assert "not checked by any case yet" in index
    page = (report / "cases" / "linux" / "t.must-fails-ipv4.html").read_text()
    assert "<svg" in page and 'class="seg out' in page and 'class="seg in' in page
    assert 'id="pcap" href="../../pcap/t.must-fails-ipv4.pcap"' in page


def test_junit_carries_status_target_and_requirement(report_sweep):
    """A CI system reading the JUnit file of the same sweep sees every item, its status,
    target and requirement as properties, and the failure as a <failure>."""
    junit = ET.parse(report_sweep["report"] / "junit.xml").getroot()
    testcases = {tc.get("name"): tc for tc in junit.iter("testcase")}
    assert len(testcases) == report_sweep["items"], sorted(testcases)
    for name, tc in testcases.items():
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        assert {"status", "target", "requirement"} <= set(props), (name, props)
        assert props["target"] == "linux"
        failed = tc.find("failure") is not None
        assert failed == name.startswith("t.must-fails"), name
        assert props["status"] == ("fail" if failed else "pass"), (name, props)
    assert {p.get("value") for p in testcases["t.must-fails[ipv4]"].iter("property")
            if p.get("name") == "requirement"} == {"RFC9293-MUST-13"}


def test_compare_lists_a_deliberately_introduced_failure(report_sweep, tmp_path, capsys):
    """Sweep again with the target altered to drop its SYN-ACKs: the comparison names the
    passive open as a new failure and exits 1; a run compared with itself exits 0."""
    again = sweep(report_sweep["cases"], tmp_path / "after", "--target-nft", DROP_SYNACK)
    assert again.returncode == summary.NON_CONFORMANT, again.stdout
    before = report_sweep["report"] / "results.json"
    after = run_dir(tmp_path / "after") / "results.json"
    assert cli(["compare", str(before), str(after)]) == 1
    text = capsys.readouterr().out
    assert "New failures (2):" in text, text
    assert "[linux] t.must-fails [ipv4]: fail -> error" in text   # no ESTABLISHED without SYN-ACK
    assert "[linux] handshake.synack-mss [ipv4]: pass -> fail" in text
    assert "expected SYN+ACK ack=1" in text
    # The listener's SYN-ACK rests on a lowercase "should" (RFC 9293 3.10.7.2): a warning.
    assert "New deviations (SHOULD/MAY) (2):" in text
    assert "[linux] handshake.passive-open [ipv4]: pass -> warn" in text
    assert cli(["compare", str(before), str(before)]) == 0
    assert "5 unchanged" in capsys.readouterr().out


def test_report_is_drawn_again_from_the_results_file(report_sweep, tmp_path, capsys):
    assert cli(["report", str(report_sweep["report"] / "results.json"),
                str(tmp_path / "again")]) == 0
    page = (tmp_path / "again" / "cases" / "linux" / "t.must-fails-ipv4.html").read_text()
    # The capture stays where the sweep wrote it; the page links there.
    run = report_sweep["report"].name
    assert 'id="pcap" href="../../../' in page and f"{run}/pcap/t.must-fails-ipv4.pcap" in page


@pytest.mark.parametrize("content,words", [
    ("{", ":1: not valid JSON"),
    ('{"schema": 99, "records": []}', "results schema 99; this suite reads schema 1 and 2"),
    ('{"schema": 2, "records": [{"case": "x", "target": "linux", "family": "ipv4", '
     '"status": "great"}]}', "records[0].status: expected one of pass, fail"),
    ('{"schema": 2, "records": [{"case": "x", "target": "linux", "family": "ipv4", '
     '"status": "pass", "ladder": [{"t": 0, "kind": "app"}]}]}',
     "records[0].ladder: ladder event 0 (app): 'call' must be a string"),
    ('[1, 2]', "not a results file of this suite"),
])
def test_a_bad_results_file_is_one_clear_error(tmp_path, capsys, content, words):
    bad = tmp_path / "results.json"
    bad.write_text(content)
    with pytest.raises(ResultsError):
        load_results(bad)
    assert cli(["compare", str(bad), str(bad)]) == summary.COULD_NOT_RUN
    err = capsys.readouterr().err
    assert words in err and str(bad) in err and "Traceback" not in err


# -- pure parts --------------------------------------------------------------------------

def rec(case, status, target="linux", family="ipv4", follows="", requirement="R-1", **extra):
    return {"case": case, "target": target, "family": family, "status": status,
            "follows": follows, "requirement": requirement, "level": "MUST",
            "expected": "ACK", "actual": "nothing", "reason": "lab broke", **extra}


def results_of(*records, cases=None):
    return Results(run={"targets": {"linux": {}}, "families": ["ipv4"]},
                   cases=cases or {}, records=list(records))


def test_compare_sorts_changes_into_what_matters():
    old = results_of(rec("a", "pass"), rec("b", "fail"), rec("c", "pass", follows="RST at SEG.ACK"),
                     rec("d", "pass"), rec("e", "pass"), rec("f", "known"), rec("gone", "pass"))
    new = results_of(rec("a", "fail"), rec("b", "pass"), rec("c", "pass", follows="RST at SND.NXT"),
                     rec("d", "error"), rec("e", "warn"), rec("f", "fail"), rec("new", "pass"))
    result = compare(old, new)
    names = lambda changes: [c.key[0] for c in changes]    # noqa: E731
    assert names(result.new_failures) == ["a"]
    assert names(result.fixed) == ["b"]
    assert names(result.changed_alternatives) == ["c"]
    assert names(result.new_errors) == ["d"]
    assert names(result.new_deviations) == ["e"]
    assert names(result.other_changes) == ["f"]      # known -> fail: the baseline lost it
    assert names(result.added) == ["new"] and names(result.removed) == ["gone"]
    assert result.exit_status == 1
    text = "\n".join(result.text("old.json", "new.json"))
    assert "followed 'RST at SEG.ACK', now 'RST at SND.NXT'" in text


def test_compare_exit_status_for_new_errors_alone():
    assert compare(results_of(rec("a", "pass")), results_of(rec("a", "error"))).exit_status == 3
    assert compare(results_of(rec("a", "fail")), results_of(rec("a", "pass"))).exit_status == 0


@pytest.mark.parametrize("statuses,expected", [
    (["pass", "known", "warn", "n/a"], summary.CONFORMANT),
    (["pass", "error"], summary.COULD_NOT_RUN),
    (["pass", "error", "fail"], summary.NON_CONFORMANT),     # a finding outweighs a gap
    (["pass", "fixed"], summary.NON_CONFORMANT),            # the baseline is out of date
])
def test_exit_status(statuses, expected):
    assert summary.exit_status([rec(str(i), s) for i, s in enumerate(statuses)]) == expected


def test_stack_verdict_words():
    assert summary.stack_verdict(Counter({"pass": 1})) == "CONFORMANT"
    assert summary.stack_verdict(Counter({"pass": 3, "known": 2})).startswith("MATCHES ITS BASELINE")
    assert summary.stack_verdict(Counter({"error": 1})).startswith("UNDECIDED")
    assert summary.stack_verdict(Counter({"fail": 2, "error": 1})) == "NON-CONFORMANT: 2 failed"


def test_requirement_standing_and_coverage():
    """A requirement deviates where its case deviated on it, is met where a case citing
    it passed, is undecided where the case stopped on another requirement, and
    catalogued requirements no case cites are listed as unchecked."""
    cases = {
        "c1": {"requirements": [{"id": "RFC9293-MUST-10", "rfc": 9293, "section": "3.5",
                                 "level": "MUST", "text": "t"},
                                {"id": "RFC9293-MUST-11", "rfc": 9293, "section": "3.5",
                                 "level": "MUST", "text": "t"}]},
        "c2": {"requirements": [{"id": "X-NEW", "rfc": 9293, "section": "3.5",
                                 "level": "SHOULD", "text": "not catalogued"}]},
    }
    results = Results(run={"targets": {"a": {}, "b": {}}}, cases=cases, records=[
        rec("c1", "pass", target="a"), rec("c1", "fail", target="b", requirement="RFC9293-MUST-10"),
        rec("c2", "error", target="a"), rec("c2", "known", target="b", requirement="X-NEW")])
    rows = {row.id: row for row in model.requirement_rows(results, load_catalogue())}
    assert rows["RFC9293-MUST-10"].standing == {"a": "met", "b": "deviates"}
    assert rows["RFC9293-MUST-11"].standing == {"a": "met", "b": "undecided"}
    assert rows["X-NEW"].standing == {"a": "undecided", "b": "known"}
    assert not rows["X-NEW"].catalogued and rows["X-NEW"].cases == ["c2"]
    unchecked = [row for row in rows.values() if row.in_scope and not row.cases]
    assert unchecked and all(set(r.standing.values()) == {"unchecked"} for r in unchecked)
    table = model.compliance_summary(list(rows.values()), ["a", "b"])
    total = next(r for r in table if r.rfc == 9293 and r.is_total and r.level == "MUST")
    assert total.count == 2 and total.by_target["b"] == Counter(deviates=1, undecided=1)


def test_results_file_is_plain_json(report_sweep):
    """CI reads it with any JSON parser: no Python-only values."""
    data = json.loads((report_sweep["report"] / "results.json").read_text())
    assert data["schema"] == 2 and {"run", "cases", "records"} <= set(data)


def test_a_schema_1_file_keeps_its_verdicts_not_its_text_ladders(tmp_path):
    """Results of an earlier release still compare: their ladders, written as text,
    are not read."""
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": 1, "run": {}, "cases": {}, "records": [
        {"case": "x", "target": "linux", "family": "ipv4", "status": "pass",
         "ladder": [{"t": 0, "kind": "segment", "text": "SYN seq=0", "direction": "out",
                     "mark": ""}]}]}))
    (record,) = load_results(old).records
    assert record["status"] == "pass" and record["ladder"] == []


@pytest.mark.lab
def test_an_unreadable_case_file_makes_the_sweep_undecided(tmp_path):
    """A case file that cannot be read is an error of the run, named at the top of the
    report, and the sweep exits 3 (the tool could not run everything), not 1."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "broken.yaml").write_text("id: x\ntitle: [unclosed\n")
    result = sweep(cases, tmp_path / "report")
    assert result.returncode == summary.COULD_NOT_RUN, result.stdout
    assert "ERROR broken.yaml" in result.stdout and "not valid YAML" in result.stdout
    index = (run_dir(tmp_path / "report") / "index.html").read_text()
    assert "Case files that could not be read" in index and "broken.yaml:3" in index


@pytest.mark.lab
def test_an_item_skipped_before_its_case_ran_is_not_a_pass(tmp_path):
    """pytest may skip an item before the case runs (here a conftest's skip mark): the
    record says not applicable with pytest's reason, never pass."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "skipped.yaml").write_text(PRETEND_MUST)
    (cases / "conftest.py").write_text(
        "import pytest\n\n\ndef pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.skip(reason='skipped by a conftest'))\n")
    result = sweep(cases, tmp_path / "report")
    assert result.returncode == summary.CONFORMANT, result.stdout
    [record] = load_results(run_dir(tmp_path / "report") / "results.json").records
    assert record["status"] == "n/a" and "skipped by a conftest" in record["reason"], record


def test_an_interrupted_sweep_claims_nothing_of_a_stack():
    """Four passes before Ctrl-C are not a conformant stack."""
    records = [rec(f"c{i}", "pass") for i in range(4)]
    assert summary.closing_summary(records, targets=["linux"])[0] == "linux  CONFORMANT"
    interrupted = summary.closing_summary(records, targets=["linux"], interrupted=True)
    assert interrupted[:2] == ["linux  INTERRUPTED: only what finished is known",
                               "       4 checks, 4 passed"]
