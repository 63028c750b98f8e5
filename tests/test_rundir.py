"""A fresh report directory per run (conformance/rundir.py): the pure parts
without root, and real sweeps that show nothing of one run sits beside
another's, that --collect-only leaves the report folder alone, and that the
selection and what it left out are in results.json."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

from conformance import rundir, selection

from .conftest import PASSIVE_OPEN, CASES, run_dir, sweep

WHEN = datetime(2026, 12, 3, 19, 26, 10, tzinfo=timezone.utc)


def test_a_run_is_named_by_its_utc_start_and_never_shares_a_directory(tmp_path):
    first = rundir.make_run_dir(tmp_path / "reports", WHEN)
    second = rundir.make_run_dir(tmp_path / "reports", WHEN)
    assert first.name == "2026-12-03T192610Z" and second.name == "2026-12-03T192610Z-2"
    assert ":" not in first.name


def test_latest_points_at_the_last_run_and_moves(tmp_path):
    first = rundir.make_run_dir(tmp_path, WHEN)
    second = rundir.make_run_dir(tmp_path, WHEN)
    assert rundir.point_latest(first) == tmp_path / "latest"
    assert os.readlink(tmp_path / "latest") == first.name       # relative: the folder moves whole
    rundir.point_latest(second)
    assert (tmp_path / "latest").resolve() == second
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name,
                                                                 "latest"])


def test_a_latest_of_the_users_is_left_alone(tmp_path):
    (tmp_path / "latest").mkdir()
    assert rundir.point_latest(rundir.make_run_dir(tmp_path, WHEN)) is None
    assert (tmp_path / "latest").is_dir() and not (tmp_path / "latest").is_symlink()


def test_files_named_in_the_report_folder_go_into_the_run(tmp_path):
    run = tmp_path / "reports" / "2026-12-03T192610Z"
    assert rundir.inside_run("reports/junit.xml", tmp_path / "reports", run) is not None
    assert rundir.inside_run(str(tmp_path / "reports" / "junit.xml"), tmp_path / "reports",
                             run) == str(run / "junit.xml")
    assert rundir.inside_run(str(tmp_path / "ci" / "junit.xml"), tmp_path / "reports",
                             run) == str(tmp_path / "ci" / "junit.xml")
    assert rundir.inside_run(None, tmp_path, run) is None


def test_a_run_that_wrote_nothing_leaves_no_directory(tmp_path):
    run = rundir.make_run_dir(tmp_path, WHEN)
    (run / "pcap" / "lwip").mkdir(parents=True)
    assert rundir.remove_if_empty(run) and not run.exists()
    kept = rundir.make_run_dir(tmp_path, WHEN)
    (kept / "junit.xml").write_text("<testsuites/>")
    assert not rundir.remove_if_empty(kept) and kept.exists()


def test_what_was_left_out_is_counted_by_why_and_by_case():
    left = selection.left_out([
        {"case": "b", "target": "linux", "family": "ipv4", "why": "selection"},
        {"case": "b", "target": "linux", "family": "ipv6", "why": "selection"},
        {"case": "a", "target": "linux", "family": "ipv4", "why": "slow"}])
    assert left == {"total": 3, "by_why": {"selection": 2, "slow": 1},
                    "cases": [{"case": "a", "why": "slow", "items": 1},
                              {"case": "b", "why": "selection", "items": 2}]}


def test_the_cases_digest_is_of_names_and_contents_not_of_the_checkout(tmp_path):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("id: a\n")
    two.write_text("id: b\n")
    files = selection.case_files([str(two), str(one), str(one)])
    assert list(files) == [str(one), str(two)]
    digest = selection.cases_digest(files)
    assert digest.startswith("sha256:") and digest == selection.cases_digest(files)
    two.write_text("id: c\n")
    assert selection.cases_digest(selection.case_files([str(one), str(two)])) != digest
    catalogue = str(CASES / PASSIVE_OPEN)
    assert selection.folders([catalogue, str(one)]) == sorted(["handshake", str(tmp_path)])
    assert "handshake" not in selection.catalogue_left_out([catalogue])
    assert "rst" in selection.catalogue_left_out([catalogue])
    assert selection.catalogue_left_out([str(one)]) == []


@pytest.mark.lab
def test_two_sweeps_write_two_runs_and_collect_only_writes_none(tmp_path):
    """Each sweep has its own directory with its captures, results.json and the
    junit.xml named in the report folder; latest is the second; --collect-only
    changes nothing there.  results.json says what -k left out, the device and
    the digest of the case files run."""
    cases = tmp_path / "cases"
    (cases / "handshake").mkdir(parents=True)
    (cases / PASSIVE_OPEN).write_text((CASES / PASSIVE_OPEN).read_text())
    reports = tmp_path / "reports"
    first = sweep(cases, reports, "-k", "handshake.passive-open and ipv4",
                  f"--junitxml={reports / 'junit.xml'}", "--dut-name", "Acme FW-200",
                  "--dut-version", "1.2.3", "--dut-notes", "bench 2, port 3")
    assert first.returncode == 0, first.stdout + first.stderr
    one = run_dir(reports)
    second = sweep(cases, reports, "-k", "handshake.passive-open", "--family", "ipv6")
    assert second.returncode == 0, second.stdout + second.stderr
    two = run_dir(reports)
    assert one != two and one.parent == two.parent == reports
    assert sorted(p.name for p in reports.iterdir()) == sorted([one.name, two.name, "latest"])
    assert (one / "junit.xml").exists() and not (two / "junit.xml").exists()
    assert sorted(p.name for p in (one / "pcap").iterdir()) == ["handshake.passive-open-ipv4.pcap"]
    assert sorted(p.name for p in (two / "pcap").iterdir()) == ["handshake.passive-open-ipv6.pcap"]
    # The terminal names the run's own directory.
    assert f"{two.name}/index.html" in second.stdout, second.stdout

    run = json.loads((one / "results.json").read_text())["run"]
    assert run["dut"] == {"name": "Acme FW-200", "version": "1.2.3", "notes": "bench 2, port 3"}
    assert run["cases_digest"].startswith("sha256:") and len(run["case_files"]) == 1
    chosen = run["selection"]
    assert chosen["keyword"] == "handshake.passive-open and ipv4" and chosen["items"] == 1
    # The file's other cases, and passive-open over IPv6, were left out by -k.
    assert chosen["left_out"]["by_why"] == {"selection": chosen["left_out"]["total"]}
    assert chosen["left_out"]["total"] >= 1
    assert json.loads((two / "results.json").read_text())["run"]["selection"][
        "families_left_out"] == ["ipv4"]

    listed = sweep(cases, reports, "--collect-only")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert sorted(p.name for p in reports.iterdir()) == sorted([one.name, two.name, "latest"])
    assert run_dir(reports) == two


def test_a_rerun_keeps_the_options_that_shape_the_target_and_the_verdict():
    """The reproduce command's options: those given that differ from their defaults
    (the target, family and case are the rerun's own)."""
    from types import SimpleNamespace

    from conformance.plugin.selection import rerun_options
    option = SimpleNamespace(target_sysctl=["net.ipv4.tcp_rfc1337=1"], target_nft=[], confirm=0,
                             link_faults=None, baseline="baselines", slow=True,
                             remote_iface=None, tester_address="host", device_kind="firewall",
                             agent_command="ssh root@dut python3 -")
    config = SimpleNamespace(option=option, getini=lambda name: name == "strict")
    assert rerun_options(config) == ["--target-sysctl=net.ipv4.tcp_rfc1337=1",
                                     "--baseline=baselines", "--slow",
                                     "--agent-command=ssh root@dut python3 -",
                                     "-o", "strict=true"]
