"""The suite's command-line options, and what they become once checked: the
targets, families, baselines and outside targets, in the stash (keys.py).  A
wrong option is a usage error (exit 4) before anything starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .. import rundir
from ..baseline import BaselineError, load_baseline, resolve
from ..faults import Faults, parse_faults
from ..fence import MODES, ON
from ..lab import sysctl_problem
from ..targets import OUTSIDE_TARGETS, TARGETS, middlebox_of
from ..targets.remote import HOST, ConfigError, RemoteConfig, check_address
from ..tcp import FAMILIES
from . import keys


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
    group.addoption("--confirm", type=_count, default=0, metavar="N",
                    help="run a failing case N more times: the failure stands only if each "
                         "run fails the same way, else it is an error (for targets on real "
                         "links, where a lost segment looks like the target's doing)")
    group.addoption("--link-faults", metavar="SPEC",
                    help="put faults on the lab's link, in a namespace between tester and "
                         "target, e.g. 'loss=2%%,dup=2%%,corrupt=1%%,delay=10ms,reorder=5%%' "
                         "(to show that they give no false verdict: the witness at the "
                         "target's end sees what the link did)")
    group.addoption("--link-retries", type=_retries, default=3, metavar="N",
                    help="run a case whose frames the link damaged up to N more times "
                         "(default 3); then it is an error naming the damage")
    group.addoption("--fences", choices=MODES, default=ON,
                    help="end a window that awaits an immediate answer once the target "
                         "answers an ICMP echo sent after the segment, on stacks measured to "
                         "answer in order (default on); off waits every window out; audit "
                         "sends the fences, waits the windows out and records in results.json "
                         "whether any answer came after a fence's reply")
    group.addoption("--cases", action="append", metavar="DIR",
                    help="a folder of case files (*.yaml) under any name; the ini's "
                         "tcpconf_cases names them too.  A folder named cases needs neither")
    parser.addini("tcpconf_cases", type="linelist",
                  help="folders of case files (*.yaml), relative to the ini file")
    group.addoption("--family", default="ipv4,ipv6", metavar="ipv4,ipv6",
                    help="the address families to run the cases over (default: both)")
    group.addoption("--baseline", metavar="PATH",
                    help="the targets' known deviations: a directory holding <target>.yaml "
                         "(e.g. baselines), or one target's file; the run then fails only "
                         "on change")
    group.addoption("--slow", action="store_true",
                    help="also run the slow cases (timers of many seconds); so does -m slow")
    group.addoption("--report", metavar="DIR",
                    help="write the compliance report of the run into a fresh directory "
                         "DIR/<UTC timestamp>/ and point DIR/latest at it: index.html "
                         "(summary, matrix, requirement index), a page per case and target "
                         "with its ladder and capture, and results.json (compare two with "
                         "'tcpconf compare'); a --junitxml or --html path directly in DIR "
                         "goes into the run's directory too")
    group.addoption("--pcap-dir", default=None,
                    help="where each case's capture is written (default: the run's pcap/ "
                         "with --report DIR, else reports/pcap)")
    group.addoption("--dut-name", metavar="TEXT",
                    help="the device under test, as the report names it on its first page "
                         "and in results.json (e.g. 'Acme FW-200'); tcpconf report tells "
                         "apart two devices swept under the same target by it")
    group.addoption("--dut-version", metavar="TEXT",
                    help="the device's firmware or software version, for the report")
    group.addoption("--dut-notes", metavar="TEXT",
                    help="free notes on the device or the set-up, shown on the report's "
                         "first page")
    outside = parser.getgroup("tcp-conformance-outside",
                              "TCP conformance: a target the suite does not build "
                              "(--target remote, container or middlebox)")
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
    outside.addoption("--device-outside", metavar="IFACE",
                      help="--target middlebox: the interface of this host cabled to the "
                           "device's outside (the tester sends from it, with --tester-address)")
    outside.addoption("--device-inside", metavar="IFACE",
                      help="--target middlebox: the interface cabled to the device's inside; "
                           "the suite puts its end host there (Linux in a namespace of its "
                           "own, on a macvlan)")
    outside.addoption("--device-kind", choices=("firewall", "nat"), default="firewall",
                      help="--target middlebox: which cases apply (default firewall)")
    outside.addoption("--device-address", metavar="ADDR[,ADDR6]",
                      help="--target middlebox: the device's outside address(es), the "
                           "tester's next hop (behind NAT, the address the end host's "
                           "connections leave from)")
    outside.addoption("--device-host", metavar="ADDR/PREFIX[,ADDR6/PREFIX]",
                      help="--target middlebox: the end host's address(es) on the inside "
                           "link, which no host may own")
    outside.addoption("--device-inside-gateway", metavar="ADDR[,ADDR6]",
                      help="--target middlebox: the device's inside address(es), the end "
                           "host's default route")
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


def _count(text: str) -> int:
    import argparse
    if not text.isdigit() or int(text) > 10:
        raise argparse.ArgumentTypeError(f"expected a number of runs, 0 to 10; got {text!r}")
    return int(text)


def _retries(text: str) -> int:
    import argparse
    if not text.isdigit() or int(text) > 20:
        raise argparse.ArgumentTypeError(f"expected a number of runs, 0 to 20; got {text!r}")
    return int(text)


def _port(text: str) -> int:
    import argparse
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port, 1 to 65535; got {text!r}")
    return port


def read_options(config) -> None:
    """Check the options and keep what they say in the stash."""
    wanted = [f.strip() for f in config.option.family.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown or not wanted:
        raise pytest.UsageError(f"--family: expected ipv4, ipv6 or ipv4,ipv6; got "
                                f"{config.option.family!r}")
    config.stash[keys.FAMILIES] = tuple(wanted)
    targets = tuple(dict.fromkeys(t.strip() for t in config.option.target.split(",") if t.strip()))
    unknown = [t for t in targets if t not in TARGETS and t not in OUTSIDE_TARGETS]
    if unknown or not targets:
        raise pytest.UsageError(f"--target: expected one or more of "
                                f"{', '.join([*TARGETS, *OUTSIDE_TARGETS])} separated by "
                                f"commas; got {config.option.target!r}")
    config.stash[keys.TARGETS] = targets
    for item in config.option.target_sysctl:
        key, equals, _value = item.partition("=")
        problem = sysctl_problem(key.strip()) if equals else (
            f"expected KEY=VALUE, such as net.ipv4.tcp_rfc1337=1; got {item!r}")
        if problem:
            raise pytest.UsageError(f"--target-sysctl: {problem}")
    config.stash[keys.FAULTS] = _link_faults(config.option.link_faults, targets)
    config.stash[keys.OUTSIDE] = _outside_targets(config.option, targets)
    config.stash[keys.RUNNERS] = {}
    config.stash[keys.SETTINGS] = {}
    config.stash[keys.BASELINES] = _load_baselines(config.option.baseline, targets)
    config.stash[keys.RUN_DIR] = _run_dir(config)
    if config.option.pcap_dir is None:
        config.option.pcap_dir = str(Path(config.stash[keys.RUN_DIR] or "reports") / "pcap")
    if not config.option.collectonly and not hasattr(config, "workerinput"):
        _writable_folder(config.option.pcap_dir, "--pcap-dir")


def _run_dir(config) -> Path | None:
    """--report DIR: the run's own directory, DIR/<UTC timestamp> (rundir.py),
    made by the controller before the first packet and handed to the xdist
    workers (pytest_configure_node); none for --collect-only, which writes no
    report.  JUnit's and pytest-html's files named directly in DIR move into
    it (this runs before their plugins read the paths)."""
    report = config.option.report
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = workerinput.get("tcpconf_run_dir")
        run_dir = Path(given) if given else None
    elif not report or config.option.collectonly:
        return None
    else:
        _writable_folder(report, "--report")
        try:
            run_dir = rundir.make_run_dir(Path(report))
        except OSError as exc:
            raise pytest.UsageError(f"--report {report}: cannot make the run's directory "
                                    f"there ({exc.strerror or exc})") from None
    if run_dir is None:
        return None
    # In a worker too: pytest-html's rows link relative to where its file goes.
    for name in ("xmlpath", "htmlpath"):
        if getattr(config.option, name, None):
            setattr(config.option, name,
                    rundir.inside_run(getattr(config.option, name), Path(report), run_dir))
    return run_dir


def _writable_folder(folder: str | None, option: str) -> None:
    """A folder the sweep will write into, made now: a usage error before the
    first packet, not a traceback after the last."""
    if folder is None:
        return
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".tcpconf-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise pytest.UsageError(f"{option} {folder}: cannot write there "
                                f"({exc.strerror or exc})") from None


def _link_faults(spec: str | None, targets: tuple) -> Faults | None:
    if not spec:
        return None
    try:
        faults = parse_faults(spec)
    except ValueError as exc:
        raise pytest.UsageError(f"--link-faults: {exc}") from None
    outside = [t for t in targets if t in OUTSIDE_TARGETS]
    if outside:
        raise pytest.UsageError(f"--link-faults: the suite owns no link to {outside[0]}; "
                                f"faults go only on the lab's own link")
    devices = [t for t in targets if middlebox_of(t)]
    if devices:
        raise pytest.UsageError(f"--link-faults: {devices[0]} is a device in the path, where "
                                f"the faulty link would go; faults go on a host target's link")
    return faults


def _outside_targets(opts, targets: tuple) -> dict:
    """The descriptions of the targets the suite does not build, checked
    before anything starts; a wrong option is a usage error (exit 4)."""
    given = {name: getattr(opts, name.replace("-", "_")) for name in (
        "remote-iface", "remote-address", "remote-port", "remote-closed-port",
        "agent-command", "black-box", "container", "container-engine", "container-network",
        "device-outside", "device-inside", "device-address", "device-host",
        "device-inside-gateway")}
    given["tester-address"] = opts.tester_address if opts.tester_address != HOST else None
    applies = {"remote": ("remote-iface", "remote-address", "agent-command"),
               "container": ("container", "container-engine", "container-network",
                             "black-box"),
               "middlebox": ("device-outside", "device-inside", "device-address",
                             "device-host", "device-inside-gateway")}
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
            from ..targets.container import ContainerConfig     # only for this target
            outside["container"] = ContainerConfig(
                container=opts.container, engine=opts.container_engine,
                network=opts.container_network, agent_command=opts.agent_command,
                black_box=opts.black_box, tester=tester, listen_port=opts.remote_port,
                closed_port=opts.remote_closed_port)
        if "middlebox" in targets:
            outside["middlebox"] = _device_config(opts, tester)
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
        raise pytest.UsageError(f"--{name} applies to --target remote, container or "
                                f"middlebox")
    return outside


def _device_config(opts, tester):
    """--target middlebox: the device between --device-outside and
    --device-inside, from unowned tester addresses only (the host's own
    address would route around the device)."""
    from ..targets.device import DeviceConfig, parse_host     # only for this target
    needed = ("device-outside", "device-inside", "device-address", "device-host",
              "device-inside-gateway")
    missing = [name for name in needed if not getattr(opts, name.replace("-", "_"))]
    if missing:
        raise ConfigError(f"--target middlebox needs {', '.join('--' + m for m in missing)}: "
                          f"the two interfaces facing the device, its outside address, the "
                          f"end host's address and the device's inside address")
    if tester == HOST:
        raise ConfigError("--target middlebox needs --tester-address ADDR[,ADDR6]: address(es) "
                          "on the outside link that no host owns (the suite answers ARP/ND "
                          "for them)")
    return DeviceConfig(
        outside=opts.device_outside, inside=opts.device_inside, kind=opts.device_kind,
        addresses=tuple(check_address(a, "--device-address")
                        for a in opts.device_address.split(",")),
        hosts=tuple(parse_host(h) for h in opts.device_host.split(",")),
        inside_gateways=tuple(check_address(a, "--device-inside-gateway")
                              for a in opts.device_inside_gateway.split(",")),
        tester=tester)


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


