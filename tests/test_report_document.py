"""The report as a document, without a lab: the first page's summary per
stack, the device, the suite and the selection; the documented deviations;
the reproduce command and RFC links of a case page; and tcpconf report
merging several results files (shards of a sweep, or several devices)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conformance.cli import main as cli
from conformance.merge import MergeError, merge
from conformance.report import model, write_report
from conformance.requirements import load_catalogue
from conformance.results import Results, load_results, undecided_record, write_results

CASE = {"title": "a RST in the window", "file": "cases/rst/rst-in-window.yaml", "line": 3,
        "catalogue": "rst/rst-in-window.yaml", "role": "listener", "start": "ESTABLISHED",
        "marks": [], "middlebox": False, "description": "",
        "requirements": [{"id": "RFC9293-MUST-13", "rfc": 9293, "section": "3.6.1",
                          "level": "MUST", "keyword": "MUST", "basis": "", "text": "linger",
                          "summary": ""}],
        "script": ["target: listener, starting in ESTABLISHED", "--> RST seq=snd_nxt + 100",
                   "<-- nothing for 200ms"],
        "script_lines": [None, 7, 8]}


def record(case="rst.in-window", status="pass", target="linux", family="ipv4", **more):
    rec = undecided_record(case=case, target=target, family=family,
                           nodeid=f"x.yaml::{case}[{family}]", reason="",
                           requirement="RFC9293-MUST-13", level="MUST", status=status)
    rec.update(more)
    return rec


def run(dut=None, **more):
    info = {"suite": "tcp-conformance", "version": "1.0", "started": "2026-12-03T19:00:00+00:00",
            "duration": 1.0, "command": ["pytest"], "host": "h", "kernel": "k",
            "targets": {"linux": {"net.ipv4.tcp_rfc1337": "0"}}, "families": ["ipv4", "ipv6"],
            "baselines": {}, "strict": False, "dut": dut or {},
            "selection": {"args": [], "keyword": "not slow", "markexpr": "", "items": 2,
                          "targets": ["linux"], "families": ["ipv4", "ipv6"],
                          "families_left_out": [], "rerun_options": ["--baseline=baselines"],
                          "left_out": {"total": 3, "by_why": {"selection": 1, "slow": 2},
                                       "cases": [{"case": "rst.slow", "why": "slow",
                                                  "items": 2}]},
                          "folders": ["rst"], "catalogue_left_out": ["grid"]},
            "commit": {"commit": "c0ffee" * 6 + "abcd", "dirty": False},
            "case_files": {"cases/rst/rst-in-window.yaml": "ab" * 32},
            "cases_digest": "sha256:" + "cd" * 32}
    info.update(more)
    return info


def saved(tmp_path: Path, name: str, results: Results) -> Path:
    path = tmp_path / name / "results.json"
    write_results(path, results)
    return path


# -- the first page ----------------------------------------------------------------------

def test_the_summary_counts_requirements_met_by_level_per_stack():
    rows = model.requirement_rows(Results(
        run=run(targets={"a": {}, "b": {}}), cases={"c": CASE},
        records=[record("c", "pass", "a"), record("c", "fail", "b")]), load_catalogue())
    summary = model.executive_summary(rows, ["a", "b"])
    (must_a,) = summary["a"]
    assert must_a.level == "MUST" and must_a.counts == Counter(met=1) and must_a.share("met") == 100
    (must_b,) = summary["b"]
    assert must_b.counts == Counter(deviates=1) and must_b.total == 1


def test_documented_deviations_keep_the_baselines_reason_families_collapsed():
    known = {"where": "baselines/linux.yaml:12", "reason": "Linux keeps RFC 793's rule"}
    results = Results(run=run(), cases={"rst.in-window": CASE}, records=[
        record(status="known", baseline=known, actual="RST accepted"),
        record(status="known", family="ipv6", baseline=known, actual="RST accepted"),
        record("other", "fail")])
    (only,) = model.documented_deviations(results)
    assert (only.target, only.case, only.families, only.reason) == (
        "linux", "rst.in-window", ["ipv4", "ipv6"], "Linux keeps RFC 793's rule")


def test_rfc_links_go_to_the_rfc_editor_at_the_section():
    assert model.rfc_url(9293, "3.10.7.4") == "https://www.rfc-editor.org/rfc/rfc9293.html#section-3.10.7.4"
    assert model.rfc_url(5961, "") == "https://www.rfc-editor.org/rfc/rfc5961.html"
    assert model.rfc_url(1122, "A.1") == "https://www.rfc-editor.org/rfc/rfc1122.html#appendix-A.1"


def test_the_reproduce_commands_rerun_just_the_case_on_its_target_and_family():
    commands = dict(model.reproduce(record(family="ipv6"), CASE, run()))
    assert commands["tcpconf"] == ("tcpconf sweep 'rst/rst-in-window.yaml::rst.in-window[ipv6]' "
                                   "--target=linux --family=ipv6 -n 0 --baseline=baselines")
    assert commands["pytest"] == ("pytest -p conformance.plugin "
                                  "'cases/rst/rst-in-window.yaml::rst.in-window[ipv6]' "
                                  "--target=linux --family=ipv6 --baseline=baselines")
    # A column of a merged report named after its device reruns as the target it was.
    renamed = record(target="remote@Acme", swept_as="remote")
    assert "--target=remote " in dict(model.reproduce(renamed, CASE, run()))["tcpconf"]


def test_the_first_page_shows_the_device_suite_selection_and_summary(tmp_path):
    dut = {"name": "Acme FW-200", "version": "4.2.1", "notes": "bench 2 <port 3>"}
    results = Results(run=run(dut), cases={"rst.in-window": CASE},
                      records=[record(), record(status="fail", family="ipv6", at=8)])
    index = write_report(tmp_path, results).read_text()
    assert 'id="executive"' in index and 'data-level="MUST"' in index
    assert 'class="b-deviates" style="width: 100.0%"' in index
    assert "Acme FW-200" in index and "4.2.1" in index and "bench 2 &lt;port 3&gt;" in index
    assert "c0ffee" in index and "sha256:" + "cd" * 32 in index
    assert "not slow" in index and 'id="left-out-total">3<' in index and "rst.slow" in index
    assert "Folders of the catalogue not swept: grid" in index
    assert "<details><summary>1 settings" in index      # the sysctls folded
    assert index.index('id="executive"') < index.index('id="stacks"')
    page = (tmp_path / "cases" / "linux" / "rst.in-window-ipv6.html").read_text()
    assert 'href="https://www.rfc-editor.org/rfc/rfc9293.html#section-3.6.1"' in page
    assert 'id="deciding-step"' in page and "nothing for 200ms" in page
    assert "tcpconf sweep &#39;rst/rst-in-window.yaml::rst.in-window[ipv6]&#39;" in page


def test_a_report_of_an_older_results_file_still_draws(tmp_path):
    """A results file without the new run fields (device, selection, commit) draws."""
    results = Results(run={"targets": {"linux": {}}, "families": ["ipv4"]},
                      cases={"rst.in-window": {k: v for k, v in CASE.items()
                                               if k != "script_lines"}},
                      records=[record(status="fail", at=8)])
    assert "Not recorded" in write_report(tmp_path, results).read_text()


# -- merging -------------------------------------------------------------------------------

def test_shards_of_one_sweep_merge_into_one_matrix(tmp_path):
    a = saved(tmp_path, "a", Results(run=run({"name": "Acme"}), cases={"rst.in-window": CASE},
                                     records=[record()]))
    b = saved(tmp_path, "b", Results(run=run({"name": "Acme"}), cases={"rst.in-window": CASE},
                                     records=[record(family="ipv6", status="fail"),
                                              record()]))       # overlapping: same status
    merged = merge([(str(a), load_results(a)), (str(b), load_results(b))])
    assert sorted((r["family"], r["status"], r["input"]) for r in merged.records) == [
        ("ipv4", "pass", 0), ("ipv6", "fail", 1)]
    assert merged.targets == ["linux"] and merged.run["dut"] == {"name": "Acme"}
    assert [i["path"] for i in merged.run["inputs"]] == [str(a), str(b)]


def test_a_conflict_names_both_files_unless_told_which_to_keep(tmp_path):
    a = saved(tmp_path, "a", Results(run=run(), cases={}, records=[record(status="pass")]))
    b = saved(tmp_path, "b", Results(run=run(), cases={}, records=[record(status="fail")]))
    inputs = [(str(a), load_results(a)), (str(b), load_results(b))]
    with pytest.raises(MergeError) as error:
        merge(inputs)
    assert str(a) in str(error.value) and str(b) in str(error.value)
    assert "rst.in-window [ipv4] on linux, as pass and fail" in str(error.value)
    assert [r["status"] for r in merge(inputs, on_conflict="last").records] == ["fail"]
    assert [r["status"] for r in merge(inputs, on_conflict="first").records] == ["pass"]


def test_two_devices_under_one_target_name_are_told_apart_by_their_dut_name(tmp_path):
    a = saved(tmp_path, "a", Results(run=run({"name": "Acme FW-200"}, targets={"remote": {}}),
                                     cases={}, records=[record(target="remote")]))
    b = saved(tmp_path, "b", Results(run=run({"name": "Other 9"}, targets={"remote": {}}),
                                     cases={}, records=[record(target="remote", status="fail")]))
    merged = merge([(str(a), load_results(a)), (str(b), load_results(b))])
    assert merged.targets == ["remote@Acme FW-200", "remote@Other 9"]
    assert {r["swept_as"] for r in merged.records} == {"remote"}
    assert model.page_name("remote@Other 9", "c", "ipv4") == "cases/remote@Other_9/c-ipv4.html"


def test_tcpconf_report_merges_files_and_keeps_the_older_form(tmp_path, capsys):
    (tmp_path / "a" / "pcap").mkdir(parents=True)
    (tmp_path / "a" / "pcap" / "rst.in-window-ipv4.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    first = Results(run=run(), cases={"rst.in-window": CASE}, records=[
        record(pcap=str(tmp_path / "a" / "pcap" / "rst.in-window-ipv4.pcap"))])
    a = saved(tmp_path, "a", first)
    b = saved(tmp_path, "b", Results(run=run(), cases={"rst.in-window": CASE},
                                     records=[record(family="ipv6", status="fail")]))
    assert cli(["report", str(a), str(b), "-o", str(tmp_path / "merged")]) == 0
    data = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert len(data["records"]) == 2 and len(data["run"]["inputs"]) == 2
    # The captures are copied: the merged folder is handed over whole.
    (copied,) = [r["pcap"] for r in data["records"] if r["pcap"]]
    assert (tmp_path / "merged" / copied).read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    index = (tmp_path / "merged" / "index.html").read_text()
    assert 'id="runs"' in index and str(a) in index
    page = (tmp_path / "merged" / "cases" / "linux" / "rst.in-window-ipv4.html").read_text()
    assert 'id="pcap" href="../../pcap/1/linux/rst.in-window-ipv4.pcap"' in page
    # A conflict: exit 3, both files named.
    c = saved(tmp_path, "c", Results(run=run(), cases={}, records=[record(status="fail")]))
    assert cli(["report", str(a), str(c), "-o", str(tmp_path / "bad")]) == 3
    assert str(c) in capsys.readouterr().err
    # The older form: one results file and the directory.
    assert cli(["report", str(a), str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "index.html").exists()
    assert cli(["report", str(a), str(b)]) == 4      # merging needs -o DIR
