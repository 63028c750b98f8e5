"""pytest integration: case files become test items, verdicts become outcomes.

* Every ``*.yaml`` under a ``cases`` directory (or named on the command line)
  is collected; each case in it is one item per address family it runs over,
  named ``<case id>[ipv4]`` and ``<case id>[ipv6]``.
* Marks come from the case: the requirement levels (``must``, ``should``,
  ``may``), the RFCs (``rfc9293``, ``rfc5961``), the target's role
  (``listener``, ``client``) and the case's own ``marks``; requirement ids are
  keywords, so ``-m must`` and ``-k RFC5961`` select as expected.
* The case runs in the item's *setup*: if the suite cannot decide (lab broken,
  agent dead, starting state not reached, bad case file) pytest reports an
  ERROR with the reason, never a pass.  The *call* phase turns the verdict
  into an outcome (verdict.judge): a MUST violation fails, printing
  requirement, expected, actual and the ladder in the manner of h2spec; a
  SHOULD deviation is a WARN (a failure with ``--strict``), a MAY one INFO.
  With ``--baseline``, listed deviations are KNOWN and a listed case that
  passes fails as FIXED: the run fails only on change.
* Slow cases (mark ``slow``: timers of many seconds) run only with ``--slow``
  or ``-m slow``; with pytest-xdist (``-n 4``) every worker builds its own lab,
  so slow cases overlap instead of queueing.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

import pytest

from . import runner as runner_module
from .baseline import BaselineError, load_baseline, resolve
from .case import Case, CaseError
from .casefile import load_case_file
from .lab import LabError, preflight
from .verdict import (ERROR, FAIL, FIXED, INFO, KNOWN, NOT_APPLICABLE, WARN, Verdict, judge,
                      render_ladder)
from . import results, summary
from .report import page_name, write_report
from .targets import OUTSIDE_TARGETS, TARGETS
from .targets.container import ContainerConfig
from .targets.remote import HOST, ConfigError, RemoteConfig, check_address
from .tcp import FAMILIES

_TARGETS_KEY = pytest.StashKey[tuple]()     # the targets' names, in the order given
_RUNNERS_KEY = pytest.StashKey[dict]()      # target name -> Runner, started on first use
_SETTINGS_KEY = pytest.StashKey[dict]()     # target name -> its settings, for the summary
_BASELINES_KEY = pytest.StashKey[dict]()    # target name -> Baseline (when --baseline)
_FAMILIES_KEY = pytest.StashKey[tuple]()
_VERDICT_KEY = pytest.StashKey[Verdict]()
_STATUS_KEY = pytest.StashKey[str]()
_CASES_SENT_KEY = pytest.StashKey[set]()   # case ids whose case_info this process sent
_OUTSIDE_KEY = pytest.StashKey[dict]()     # "remote"/"container" -> its RemoteConfig/ContainerConfig


def pytest_addoption(parser):
    group = parser.getgroup("tcp-conformance", "TCP conformance suite")
    group.addoption("--target", default="linux", metavar="NAME[,NAME...]",
                    help="the stack(s) to test, every case against each (default: linux, "
                         "the kernel's stack in a lab namespace the suite builds)")
    group.addoption("--target-sysctl", action="append", default=[], metavar="KEY=VALUE",
                    help="set a sysctl in the target namespace, e.g. "
                         "net.ipv4.tcp_rfc1337=1 (repeatable)")
    group.addoption("--target-nft", action="append", default=[], metavar="in|out:RULE",
                    help="alter the target with an nftables rule on its incoming or outgoing "
                         "segments, e.g. 'out:tcp flags & rst == rst drop' (repeatable)")
    group.addoption("--family", default="ipv4,ipv6", metavar="ipv4,ipv6",
                    help="the address families to run the cases over (default: both)")
    group.addoption("--baseline", metavar="PATH",
                    help="the targets' known deviations: a directory holding <target>.yaml "
                         "(e.g. baselines), or one target's file; the run then fails only "
                         "on change")
    group.addoption("--slow", action="store_true",
                    help="also run the slow cases (timers of many seconds); so does -m slow")
    group.addoption("--report", metavar="DIR",
                    help="write the compliance report into DIR: index.html (summary, "
                         "matrix, requirement index), a page per case and target with its "
                         "ladder and capture, and results.json (compare two with "
                         "'python -m conformance compare')")
    group.addoption("--pcap-dir", default=None,
                    help="where each case's capture is written (default: DIR/pcap with "
                         "--report DIR, else reports/pcap)")
    outside = parser.getgroup("tcp-conformance-outside",
                              "TCP conformance: a target the suite does not build "
                              "(--target remote or --target container)")
    outside.addoption("--remote-iface", metavar="IFACE",
                      help="--target remote: the interface of this host facing the target "
                           "(the target must be on its link: the suite never sends through a "
                           "router)")
    outside.addoption("--remote-address", metavar="ADDR[,ADDR6]",
                      help="--target remote: the target's IPv4 and/or IPv6 address; the suite "
                           "sends to these and to nothing else")
    outside.addoption("--remote-port", type=_port, metavar="PORT",
                      help="black-box mode: a port where the target's own service listens, "
                           "accepts, and never sends or closes on its own (discard, 9, is "
                           "ideal); listener cases run against it")
    outside.addoption("--remote-closed-port", type=_port, metavar="PORT",
                      help="black-box mode: a port where nothing listens on the target; "
                           "closed-port cases run against it")
    outside.addoption("--tester-address", default=HOST, metavar="host|ADDR[,ADDR6]",
                      help="where the tester speaks from: 'host' (default), the interface's "
                           "own address(es), with an nftables table that stops this host's "
                           "kernel from resetting the test flows (removed afterwards); or "
                           "address(es) no host owns, for which the suite answers ARP and "
                           "neighbour discovery itself")
    outside.addoption("--agent-command", metavar="'CMD'",
                      help="a command that runs Python 3 on the target with stdin/stdout "
                           "attached: 'ssh root@dut python3 -', 'docker exec -i NAME python3 "
                           "-', 'ip netns exec NS python3 -'; the suite sends its agent through "
                           "it.  Without one: black-box mode (cases that need the target's "
                           "application to act are not run; the others are judged from the "
                           "wire, a final state check by a wire probe)")
    outside.addoption("--black-box", action="store_true",
                      help="--target container: run no agent in the container")
    outside.addoption("--container", metavar="NAME",
                      help="--target container: the docker or podman container to test; the "
                           "suite finds its address, network namespace and bridge")
    outside.addoption("--container-engine", choices=("docker", "podman"),
                      help="--target container: the engine (default: whichever is installed)")
    outside.addoption("--container-network", metavar="NAME",
                      help="--target container: the network to test it on, when it has "
                           "several")


def _port(text: str) -> int:
    import argparse
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port, 1 to 65535; got {text!r}")
    return port


def pytest_configure(config):
    for level in ("must", "should", "may"):
        config.addinivalue_line("markers", f"{level}: cases checking a {level.upper()} requirement")
    for role in ("listener", "client"):
        config.addinivalue_line("markers", f"{role}: cases where the target is the {role}")
    for family in FAMILIES:
        config.addinivalue_line("markers", f"{family}: cases run over {family}")
    wanted = [f.strip() for f in config.option.family.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown or not wanted:
        raise pytest.UsageError(f"--family: expected ipv4, ipv6 or ipv4,ipv6; got "
                                f"{config.option.family!r}")
    config.stash[_FAMILIES_KEY] = tuple(wanted)
    targets = tuple(dict.fromkeys(t.strip() for t in config.option.target.split(",") if t.strip()))
    unknown = [t for t in targets if t not in TARGETS and t not in OUTSIDE_TARGETS]
    if unknown or not targets:
        raise pytest.UsageError(f"--target: expected one or more of "
                                f"{', '.join([*TARGETS, *OUTSIDE_TARGETS])} separated by "
                                f"commas; got {config.option.target!r}")
    config.stash[_TARGETS_KEY] = targets
    config.stash[_OUTSIDE_KEY] = _outside_targets(config.option, targets)
    config.stash[_RUNNERS_KEY] = {}
    config.stash[_SETTINGS_KEY] = {}
    config.stash[_BASELINES_KEY] = _load_baselines(config.option.baseline, targets)
    config.addinivalue_line("markers", "slow: cases that wait on timers of many seconds")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlReport(), "tcp-conformance-html")
    if config.option.pcap_dir is None:
        config.option.pcap_dir = str(Path(config.option.report or "reports") / "pcap")
    if not hasattr(config, "workerinput"):
        # The controller (or the only process): it sees every item's report.
        config.pluginmanager.register(SweepSummary(config), "tcp-conformance-summary")


def _outside_targets(opts, targets: tuple) -> dict:
    """The descriptions of the targets the suite does not build, checked
    before anything starts; a wrong option is a usage error (exit 4)."""
    given = {name: getattr(opts, name.replace("-", "_")) for name in (
        "remote-iface", "remote-address", "remote-port", "remote-closed-port",
        "agent-command", "black-box", "container", "container-engine", "container-network")}
    given["tester-address"] = opts.tester_address if opts.tester_address != HOST else None
    applies = {"remote": ("remote-iface", "remote-address", "agent-command"),
               "container": ("container", "container-engine", "container-network",
                             "black-box")}
    for target, names in applies.items():
        for name in names:
            if given[name] and target not in targets and not (
                    name == "agent-command" and "container" in targets):
                raise pytest.UsageError(f"--{name} applies to --target {target}, which is not "
                                        f"among the targets ({', '.join(targets)})")
    outside = {}
    try:
        tester = HOST if opts.tester_address == HOST else tuple(
            check_address(a, "--tester-address") for a in opts.tester_address.split(","))
        if "remote" in targets:
            if not (opts.remote_iface and opts.remote_address):
                raise ConfigError("--target remote needs --remote-iface IFACE (the interface "
                                  "facing the target) and --remote-address ADDR[,ADDR6]")
            outside["remote"] = RemoteConfig(
                iface=opts.remote_iface, tester=tester, agent_command=opts.agent_command,
                addresses=tuple(check_address(a, "--remote-address")
                                for a in opts.remote_address.split(",")),
                listen_port=opts.remote_port, closed_port=opts.remote_closed_port)
        if "container" in targets:
            if not opts.container:
                raise ConfigError("--target container needs --container NAME")
            if opts.black_box and opts.agent_command:
                raise ConfigError("--black-box and --agent-command contradict each other")
            outside["container"] = ContainerConfig(
                container=opts.container, engine=opts.container_engine,
                network=opts.container_network, agent_command=opts.agent_command,
                black_box=opts.black_box, tester=tester, listen_port=opts.remote_port,
                closed_port=opts.remote_closed_port)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    altered = [name for name in ("target-sysctl", "target-nft")
               if getattr(opts, name.replace("-", "_"))]
    if altered and all(target in OUTSIDE_TARGETS for target in targets):
        raise pytest.UsageError(f"--{altered[0]} alters a stack of the suite's own lab; the "
                                f"suite does not change the settings of a target it did not "
                                f"build")
    if not outside and any(given.values()):
        name = next(name for name, value in given.items() if value)
        raise pytest.UsageError(f"--{name} applies to --target remote or --target container")
    return outside


def _load_baselines(option: str | None, targets: tuple) -> dict:
    if not option:
        return {}
    if len(targets) > 1 and not Path(option).is_dir():
        raise pytest.UsageError(f"--baseline: with several targets, name a directory holding "
                                f"<target>.yaml; {option} is not a directory")
    baselines = {}
    for target in targets:
        try:
            baseline = load_baseline(resolve(option, target))
        except BaselineError as exc:
            raise pytest.UsageError(f"--baseline: {exc}") from None
        # A target the suite did not build may be any stack: a file named
        # explicitly (a Linux host's baseline for a remote Linux host, say) is
        # taken as the user says.
        explicit_file = target in OUTSIDE_TARGETS and not Path(option).is_dir()
        if baseline.target != target and not explicit_file:
            raise pytest.UsageError(f"--baseline: {baseline.path} is the baseline of "
                                    f"{baseline.target!r}, not of the target {target!r}")
        baselines[target] = baseline
    return baselines


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix in (".yaml", ".yml") and (
            "cases" in file_path.parts or parent.session.isinitpath(file_path)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        try:
            cases = load_case_file(self.path, None)
        except CaseError as error:
            # One clear error for this file; the other files still run.
            yield InvalidCase.from_parent(self, name=self.path.name, error=error)
            return
        families = self.config.stash[_FAMILIES_KEY]
        targets = self.config.stash[_TARGETS_KEY]
        for case in cases:
            for target in targets:
                for family in case.families:
                    if family in families:
                        # With one target the item is <id>[ipv4]; with several,
                        # <id>[lwip-ipv4].
                        label = family if len(targets) == 1 else f"{target}-{family}"
                        yield CaseItem.from_parent(self, name=f"{case.id}[{label}]", case=case,
                                                   family=family, target=target)


class InvalidCase(pytest.Item):
    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def setup(self):
        pytest.fail(f"invalid case file: {self.error}", pytrace=False)

    def runtest(self):  # pragma: no cover - setup always fails
        pass

    def reportinfo(self):
        return self.path, (self.error.line or 1) - 1, f"invalid case file {self.path.name}"


class CaseFailed(Exception):
    def __init__(self, verdict: Verdict, text: str | None = None):
        super().__init__(verdict.headline())
        self.verdict, self.text = verdict, text or verdict.explain()


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, family: str, target: str, **kwargs):
        super().__init__(**kwargs)
        self.case, self.family, self.target = case, family, target
        levels = {req.level.lower() for req in case.requirements}
        rfcs = {f"rfc{req.rfc}" for req in case.requirements}
        for mark in sorted(levels | rfcs | {case.role, family} | set(case.marks)):
            _register_mark(self.config, mark)
            self.add_marker(mark)
        self.extra_keyword_matches.update(req.id for req in case.requirements)

    def _runner(self) -> "runner_module.Runner":
        runners = self.config.stash[_RUNNERS_KEY]
        if self.target not in runners:
            opts = self.config.option
            sysctls = dict(item.split("=", 1) for item in opts.target_sysctl)
            pcap_dir = Path(opts.pcap_dir)
            if len(self.config.stash[_TARGETS_KEY]) > 1:
                pcap_dir = pcap_dir / self.target
            workerinput = getattr(self.config, "workerinput", None)
            share = ((int(workerinput["workerid"].lstrip("gw")), workerinput["workercount"])
                     if workerinput else (0, 1))
            runners[self.target] = current = runner_module.Runner.for_target(
                self.target, sysctls, pcap_dir,
                outside=self.config.stash[_OUTSIDE_KEY].get(self.target), share=share)
            current.start()
            if not current.failure:
                _apply_nft(current, opts.target_nft)
                _record_settings(self.config, self.target, current.target.settings())
        return runners[self.target]

    def setup(self):
        runner = self._runner()
        if runner.failure:
            pytest.fail(f"the target {self.target} could not be started: {runner.failure}",
                        pytrace=False)
        verdict = runner.run(self.case, self.family)
        verdict.label = self.name
        self.stash[_VERDICT_KEY] = verdict
        if verdict.outcome == NOT_APPLICABLE:
            # Not a verdict, and not the suite failing to decide: the case is
            # written for something this stack does not have.
            pytest.skip(verdict.reason)
        if verdict.outcome == ERROR:
            pytest.fail(verdict.explain(), pytrace=False)

    def deviation(self):
        baseline = self.config.stash[_BASELINES_KEY].get(self.target)
        return baseline.lookup(self.case.id, self.family) if baseline else None

    def runtest(self):
        verdict = self.stash[_VERDICT_KEY]
        deviation = self.deviation()
        status = judge(verdict, _strict(self.config), deviation)
        self.stash[_STATUS_KEY] = status
        if status == FAIL and deviation is not None:
            raise CaseFailed(verdict, f"{verdict.explain()}\n  The baseline lists this case "
                                      f"against {deviation.requirement} ({deviation.where}); "
                                      f"it now deviates from another requirement.")
        if status == FAIL:
            raise CaseFailed(verdict)
        if status == FIXED:
            raise CaseFailed(verdict, f"{verdict.headline()}\n  The baseline lists this case "
                                      f"as a known deviation ({deviation.where}: "
                                      f"{deviation.reason}),\n  but the target now conforms: "
                                      f"remove it from the baseline.")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.text
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line - 1, f"{self.name}: {self.case.title}"


def _strict(config) -> bool:
    """pytest's own --strict (strict mode) also makes SHOULD deviations fail,
    as h2spec's --strict does."""
    return bool(config.getini("strict"))


def _register_mark(config, name: str) -> None:
    """Marks come from case files, so they are declared as they are met."""
    if not any(line.split(":")[0].strip() == name for line in config.getini("markers")):
        config.addinivalue_line("markers", f"{name}: from case files")


def _apply_nft(runner, rules) -> None:
    for text in rules:
        hook, _, rule = text.partition(":")
        try:
            runner.target.add_nft_rule(hook.strip(), rule.strip())
        except (LabError, AttributeError) as exc:
            runner.failure = f"cannot apply --target-nft {text!r}: {exc}"
            runner.stop()
            return


def _record_settings(config, target: str, settings: dict) -> None:
    """Keep a target's settings for the terminal summary and the report's
    environment table."""
    if target in config.stash[_SETTINGS_KEY]:
        return
    config.stash[_SETTINGS_KEY][target] = settings
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    title = "Target" if len(config.stash[_TARGETS_KEY]) == 1 else f"Target {target}"
    config.stash.setdefault(metadata_key, {}).update(
        {f"{title}: {key}": value for key, value in settings.items()})


def pytest_collection_modifyitems(config, items):
    """Leave slow cases out unless asked for (--slow, or a -m naming slow)."""
    if config.option.slow or "slow" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


def pytest_collection_finish(session):
    """Refuse to start without root or the lab's tools: one message, not one per case."""
    if session.config.option.collectonly:
        return
    if any(isinstance(item, CaseItem) for item in session.items):
        # Every target of the suite's own lab needs it (lwIP and gVisor run
        # in a lab namespace too).
        problems = preflight()
        if problems:
            pytest.exit("cannot build the lab: " + "; ".join(problems),
                        returncode=summary.COULD_NOT_RUN)
        runner_module.install_signal_handlers()


def pytest_sessionfinish(session):
    for current in session.config.stash.get(_RUNNERS_KEY, {}).values():
        current.stop()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: its labs' settings go to the controller's summary.
        workeroutput["tcpconf_settings"] = session.config.stash.get(_SETTINGS_KEY, {})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist: keep each target's settings from the first worker that reports
    them (every worker builds its labs the same way)."""
    for target, settings in (getattr(node, "workeroutput", {}).get("tcpconf_settings")
                             or {}).items():
        _record_settings(node.config, target, settings)


_STATUS_WORDS = {WARN: ("warned", "W", "WARN"), INFO: ("info", "i", "INFO"),
                 KNOWN: ("known", "k", "KNOWN")}


def pytest_report_teststatus(report, config):
    status = getattr(report, "tcpconf", {}).get("status")
    if report.when == "call" and status in _STATUS_WORDS:
        category, letter, word = _STATUS_WORDS[status]
        return category, letter, (word, {"yellow": status == WARN, "cyan": status != WARN})
    return None


def pytest_terminal_summary(terminalreporter, config):
    titles = {WARN: "SHOULD deviations (warnings; --strict makes them fail)",
              INFO: "MAY deviations (information)",
              KNOWN: "known deviations (listed in the baseline)"}
    for status, title in titles.items():
        reports = [r for r in terminalreporter.stats.get(_STATUS_WORDS[status][0], [])]
        if not reports:
            continue
        terminalreporter.section(f"TCP conformance: {title}")
        if status == KNOWN and config.option.verbose <= 0 and len(reports) > 20:
            # A baseline of hundreds of entries would bury the summary.
            terminalreporter.write_line(f"{len(reports)} known deviations: listed with -v, "
                                        f"and each with its reason in the report")
            continue
        for report in reports:
            terminalreporter.write_line(report.tcpconf["summary"])
    for target, settings in config.stash.get(_SETTINGS_KEY, {}).items():
        terminalreporter.section(f"TCP conformance: target {target}")
        for key, value in settings.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, InvalidCase):
        if call.when == "setup":
            # Not a case on a target: a file the suite could not read at all.
            report.tcpconf = {"status": "error", "record": results.undecided_record(
                case=str(item.path.name), target="", family="", nodeid=item.nodeid,
                reason=f"invalid case file: {item.error}")}
        return
    if not isinstance(item, CaseItem):
        return
    verdict = item.stash.get(_VERDICT_KEY, None)
    if report.skipped and isinstance(report.longrepr, tuple):
        # Point at the case, not at the plugin line that skipped it.
        report.longrepr = (str(item.path), item.case.line, report.longrepr[2])
    report.tcpconf = fields = _report_fields(item, verdict, call.when)
    if not (call.when == "call" or (call.when == "setup" and not report.passed)):
        return
    # The item is decided: its record goes to the controller (plain JSON, so
    # it crosses from an xdist worker as it is), and the status to JUnit.
    # Without a status from the verdict, the item ended before the case ran: it
    # failed (an error) or was skipped (not applicable); never a pass.
    status = fields["status"] or ("n/a" if report.skipped else "error")
    fields["status"] = status
    if verdict is not None:
        fields["record"] = results.record(verdict, status, target=item.target,
                                          nodeid=item.nodeid, deviation=item.deviation())
    else:
        fields["record"] = results.undecided_record(
            case=item.case.id, target=item.target, family=item.family, nodeid=item.nodeid,
            reason=_longrepr_text(report), requirement=item.case.primary.id,
            level=item.case.primary.level, status=status)
    sent = item.config.stash.setdefault(_CASES_SENT_KEY, set())
    if item.case.id not in sent:     # once per process: the controller keeps the first
        sent.add(item.case.id)
        fields["case_info"] = results.case_info(item.case)
    # JUnit XML takes an item's properties from its teardown report, made from these.
    item.user_properties += [("status", status), ("target", item.target),
                             ("family", item.family), ("requirement", fields["requirement"]),
                             ("level", fields["level"])]
    if fields["follows"]:
        item.user_properties.append(("follows", fields["follows"]))
    if verdict is not None and getattr(item.config.option, "htmlpath", None):
        import pytest_html    # pytest-html's --html: its row carries the evidence too
        report.extras = getattr(report, "extras", []) + [
            pytest_html.extras.html(_evidence(verdict, item.target, item.config))]


def _longrepr_text(report) -> str:
    """A skip's reason, or a failure's text."""
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return str(report.longrepr)


def _report_fields(item: "CaseItem", verdict: Verdict | None, when: str) -> dict:
    """What the terminal and the report show about a case, as plain data
    (xdist carries reports between processes as JSON)."""
    req = (verdict.requirement if verdict and verdict.requirement else None) or item.case.primary
    status = item.stash.get(_STATUS_KEY, None) if when == "call" else None
    if verdict is not None and verdict.outcome in (ERROR, NOT_APPLICABLE):
        status = verdict.outcome
    fields = {"status": status or "", "target": item.target, "requirement": req.id,
              "level": req.level,
              "citation": req.citation, "follows": (verdict.alternative or "") if verdict else ""}
    if status in (WARN, INFO):
        fields["summary"] = (f"{status.upper()} {item.nodeid}\n  {req.id} ({req.level}, "
                             f"{req.citation})\n  Expected: {verdict.expected}\n"
                             f"    Actual: {verdict.actual}")
    elif status == KNOWN:
        deviation = item.deviation()
        fields["summary"] = (f"KNOWN {item.nodeid}: {req.id} ({req.level})\n  "
                             f"Actual: {verdict.actual}\n  Reason ({deviation.where}): "
                             f"{deviation.reason}")
    return fields


class SweepSummary:
    """In the controller (or the only process): gathers every decided item's
    record, writes results.json and the report (--report), closes the terminal
    output with a summary per stack, and sets the exit status (summary.py)."""

    def __init__(self, config):
        self.config = config
        self.records: list[dict] = []
        self.cases: dict[str, dict] = {}
        self.started, self.clock = results.now(), time.monotonic()
        self.report_dir = Path(config.option.report) if config.option.report else None
        self.announced = False

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        if any(isinstance(item, CaseItem) for item in session.items):
            self._announce(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """xdist: the controller collects nothing itself; every worker collects all."""
        if not self.announced and any(".yaml::" in nodeid for nodeid in ids):
            self._announce(len(ids))

    def _announce(self, items: int) -> None:
        """Say what is about to be tested before the first packet (also with -q)."""
        config, self.announced = self.config, True
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or config.option.collectonly:
            return
        report = f"{self.report_dir}/index.html" if self.report_dir else "none (--report DIR)"
        reporter.write_line(
            f"TCP conformance: {items} items on {', '.join(config.stash[_TARGETS_KEY])} over "
            f"{', '.join(config.stash[_FAMILIES_KEY])}; baseline: "
            f"{config.option.baseline or 'none'}; report: {report}")
        for name, outside in config.stash[_OUTSIDE_KEY].items():
            reporter.write_line(f"TCP conformance: {name}: {outside.announce()}")

    def pytest_runtest_logreport(self, report):
        fields = getattr(report, "tcpconf", None)
        if fields and "record" in fields:
            self.records.append(fields["record"])
            if "case_info" in fields:
                self.cases.setdefault(fields["record"]["case"], fields["case_info"])

    def results(self) -> results.Results:
        config = self.config
        baselines = {t: str(b.path) for t, b in config.stash[_BASELINES_KEY].items()}
        settings = config.stash.get(_SETTINGS_KEY, {})
        run = results.run_info(
            command=["pytest", *config.invocation_params.args],
            # In the order of --target (xdist workers report in any order); a
            # target that never started has no settings.
            targets={target: settings.get(target, {}) for target in config.stash[_TARGETS_KEY]},
            families=list(config.stash[_FAMILIES_KEY]), baselines=baselines,
            strict=_strict(config), started=self.started,
            duration=time.monotonic() - self.clock)
        return results.Results(run, self.cases, self.records)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not self.records:
            return
        if self.report_dir is not None:
            swept = self.results()
            results.write_results(self.report_dir / "results.json", swept)
            write_report(self.report_dir, swept)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = summary.exit_status(self.records)

    @pytest.hookimpl(trylast=True)     # last before pytest's closing line
    def pytest_terminal_summary(self, terminalreporter, exitstatus):
        if not self.records:
            return
        terminalreporter.section("TCP conformance summary")
        for line in summary.closing_summary(self.records, self.cases,
                                            list(self.config.stash[_TARGETS_KEY])):
            terminalreporter.write_line(line)
        if self.report_dir is not None:
            terminalreporter.write_line("")
            index = (self.report_dir / "index.html").resolve()
            terminalreporter.write_line(f"Report:  {index.as_uri()}")
            terminalreporter.write_line(f"Results: {self.report_dir / 'results.json'} "
                                        f"(compare two: python -m conformance compare OLD NEW)")
        status = summary.exit_status(self.records)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            terminalreporter.write_line(f"Exit status {status}: {summary.EXIT_MEANINGS[status]}")


class HtmlReport:
    """pytest-html additions: the title and the requirement columns (the
    evidence itself is attached in pytest_runtest_makereport)."""

    def pytest_html_report_title(self, report):
        report.title = "TCP conformance report"

    def pytest_html_results_table_header(self, cells):
        cells.insert(1, "<th>Verdict</th>")
        cells.insert(2, "<th>Target</th>")
        cells.insert(4, "<th>Requirement</th>")
        cells.insert(5, "<th>Level</th>")
        cells.insert(6, "<th>Follows</th>")

    def pytest_html_results_table_row(self, report, cells):
        fields = getattr(report, "tcpconf", None) or {}
        requirement = f"{fields['requirement']} ({fields['citation']})" if fields else ""
        cells.insert(1, f"<td>{html.escape(fields.get('status', '').upper())}</td>")
        cells.insert(2, f"<td>{html.escape(fields.get('target', ''))}</td>")
        cells.insert(4, f"<td>{html.escape(requirement)}</td>")
        cells.insert(5, f"<td>{fields.get('level', '')}</td>")
        cells.insert(6, f"<td>{html.escape(fields.get('follows', ''))}</td>")


def _evidence(verdict: Verdict, target: str, config) -> str:
    """The verdict's evidence for pytest-html's row: requirement, expected/actual,
    the text ladder, and links to the capture and to the case's page of --report.
    Links, not embedded data: thousands of rows stay light."""
    case = verdict.case
    here = Path(config.option.htmlpath).resolve().parent
    rows = []
    for req in case.requirements:
        rows.append(f"<li><b>{html.escape(req.id)}</b> ({req.level}, {html.escape(req.citation)}): "
                    f"{html.escape(req.text.strip())}</li>")
    parts = [f"<div class='tcpconf'><h4>{html.escape(case.id)}: {html.escape(case.title)}</h4>",
             f"<p>Target: {html.escape(verdict.target)}. Case file: "
             f"{html.escape(str(case.path))}:{case.line}</p>",
             "<p>Requirements:</p><ul>" + "".join(rows) + "</ul>"]
    if verdict.outcome == FAIL:
        parts.append(f"<p><b>Expected:</b> {html.escape(verdict.expected)}<br>"
                     f"<b>Actual:</b> {html.escape(verdict.actual)}<br>"
                     f"<b>At:</b> {html.escape(str(case.path))}:{verdict.line}</p>")
    if verdict.outcome == ERROR:
        parts.append(f"<p><b>The suite could not decide:</b> {html.escape(verdict.reason)}</p>")
    if verdict.outcome == NOT_APPLICABLE:
        parts.append(f"<p><b>Not run:</b> {html.escape(verdict.reason)}</p>")
    if verdict.unobserved:
        parts.append(f"<p><b>Not observable on this target</b> (the verdict rests on the wire "
                     f"there): {html.escape(', '.join(verdict.unobserved))}</p>")
    if verdict.alternative:
        parts.append(f"<p><b>The target followed:</b> {html.escape(verdict.alternative)}</p>")
    parts.append("<pre>" + html.escape("\n".join(render_ladder(verdict.ladder))) + "</pre>")
    links = []
    if config.option.report:
        page = Path(config.option.report).resolve() / page_name(
            target, verdict.case.id, verdict.family)
        links.append(f"<a href='{html.escape(os.path.relpath(page, here))}'>case page "
                     f"with the ladder diagram</a>")
    if verdict.pcap and Path(verdict.pcap).exists():
        name = Path(verdict.pcap).name
        links.append(f"<a download='{html.escape(name)}' href='"
                     f"{html.escape(os.path.relpath(Path(verdict.pcap).resolve(), here))}'>"
                     f"the capture ({html.escape(name)})</a>")
    if links:
        parts.append("<p>" + " &middot; ".join(links) + "</p>")
    parts.append("</div>")
    return "".join(parts)
