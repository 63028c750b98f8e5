"""The case language: YAML case files, checked against a schema, turned into steps.

A case reads like the ladder diagram an engineer draws::

    steps:
      - send:   {flags: SYN, seq: 0, mss: 1460}
      - expect: {flags: SYN+ACK, ack: 1, mss: present}
      - send:   {flags: ACK}
      - state:  ESTABLISHED

Sequence numbers are relative: in ``send`` the ``seq`` counts from the tester's
ISN and ``ack`` from the target's; in ``expect`` the other way round, as on
the ladder.  Both may name the tester's view of the connection: ``snd_nxt``,
``snd_una``, ``rcv_nxt`` and ``snd_wnd`` (the window the target offered), e.g.
``seq: snd_nxt + snd_wnd + 100``.

Every problem in a file is reported as one :class:`CaseError` naming the file,
the line, the field and what was expected; nothing here raises anything else
for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from . import tcp
from .requirements import Requirement, load_catalogue
from .source import (ErrorList, Marks, Schema, SourceError, dotted, load_yaml_documents,
                     schema_errors, validator)
from .steps import (
    DEFAULT_CONNECTION,
    DEFAULT_STATE_WITHIN,
    DEFAULT_WITHIN,
    ISN_COMPARISONS,
    DEFAULT_CROSSING_WITHIN,
    Alternative,
    App,
    Expect,
    FirewallCheck,
    OneOf,
    Send,
    SendIcmp,
    Silence,
    StateCheck,
    Wait,
    fmt_duration,
    is_errno,
    parse_duration,
    parse_seqexpr,
    pattern,
)
from .tcp import FAMILIES, MAX_OPTION_BYTES, encode_options

SCHEMA_PATH = Path(__file__).with_name("case-schema.yaml")
SETUPS_PATH = Path(__file__).with_name("setups.yaml")

ACTION_KEYS = ("send", "expect", "silence", "app", "state", "wait", "one_of", "firewall",
               "icmp")
DEFAULT_BACKLOG = 5   # the listen() backlog unless the case says otherwise


# A case file that cannot be run, located at file, line and field: the error
# every input file of the suite reports (conformance.source).
CaseError = SourceError


@lru_cache(maxsize=None)
def _validator() -> Schema:
    return validator(SCHEMA_PATH)


@dataclass
class Case:
    id: str
    title: str
    requirements: list[Requirement]
    role: str
    start: str
    steps: list
    path: Path
    line: int
    description: str = ""
    marks: list[str] = field(default_factory=list)
    backlog: int = DEFAULT_BACKLOG
    # 'firewall' or 'nat': a case for the device in the path, run against the
    # middlebox targets only (targets/firewall.py); None: a case for a host.
    middlebox: str | None = None
    sockopts: dict = field(default_factory=dict)
    sysctls: dict = field(default_factory=dict)
    families: tuple = FAMILIES
    setup_steps: list = field(default_factory=list)
    connections: tuple = (DEFAULT_CONNECTION,)   # the connections the steps name, in order

    @property
    def primary(self) -> Requirement:
        return self.requirements[0]

    def requirement(self, req_id: str | None) -> Requirement:
        for req in self.requirements:
            if req.id == req_id:
                return req
        return self.primary


# --- building steps from checked data ------------------------------------------

class _Builder:
    """Turns schema-checked data into steps, reporting semantic errors by line."""

    def __init__(self, path: Path, marks: Marks, requirement_ids=()):
        self.path, self.marks, self.requirement_ids = path, marks, set(requirement_ids)

    def error(self, field_path, message):
        return CaseError(self.path, self.marks.line(field_path), dotted(field_path), message)

    def duration(self, value, field_path) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(field_path, str(exc)) from None

    def steps(self, items, path) -> list:
        return [self.step(item, path + (i,)) for i, item in enumerate(items)]

    def step(self, item: dict, path):
        actions = [k for k in item if k in ACTION_KEYS]
        if len(actions) != 1:
            what = f"got {', '.join(actions)}" if actions else "got none"
            raise self.error(path, f"a step needs exactly one of {', '.join(ACTION_KEYS)}; {what}")
        kind = actions[0]
        value = item[kind]
        requirement = self.requirement(item.get("requirement"), path + ("requirement",))
        common = dict(line=self.marks.line(path + (kind,)), note=item.get("note"),
                      requirement=requirement, conn=item.get("conn", DEFAULT_CONNECTION))
        here = path + (kind,)
        if kind == "send":
            return self.send(value, here, common)
        if kind == "expect":
            return self.expect(value, here, common)
        if kind == "silence":
            return Silence(duration=self.duration(value, here), **common)
        if kind == "wait":
            return Wait(duration=self.duration(value, here), **common)
        if kind == "state":
            if isinstance(value, str):
                return StateCheck(state=value, **common)
            within = (self.duration(value["within"], here + ("within",)) if "within" in value
                      else DEFAULT_STATE_WITHIN)
            return StateCheck(state=value["is"], within=within, **common)
        if kind == "app":
            return self.app(value, here, common)
        if kind == "icmp":
            return SendIcmp(error=value, **common)
        if kind == "firewall":
            if isinstance(value, str):
                return FirewallCheck(fate=value, **common)
            if "same_mapping_as" in value:
                return FirewallCheck(same_mapping_as=value["same_mapping_as"], **common)
            within = (self.duration(value["within"], here + ("within",)) if "within" in value
                      else DEFAULT_CROSSING_WITHIN)
            idle = value.get("idle_timeout_at_least")
            if idle is not None:
                try:
                    idle = parse_duration(idle, limit=float("inf"))
                except ValueError as exc:
                    raise self.error(here + ("idle_timeout_at_least",), str(exc)) from None
                if value["tracks"] == "none":
                    raise self.error(here + ("idle_timeout_at_least",),
                                     "a timeout of no connection: expected a state in 'tracks'")
            return FirewallCheck(tracks=value["tracks"], within=within,
                                 idle_timeout_at_least=idle, **common)
        alternatives = [
            Alternative(label=alt["label"], conforms=alt.get("conforms", True),
                        note=alt.get("note"),
                        steps=self.steps(alt["steps"], here + (i, "steps")),
                        requirement=self.requirement(alt.get("requirement"),
                                                     here + (i, "requirement")))
            for i, alt in enumerate(value)
        ]
        for i, alt in enumerate(alternatives):
            if not isinstance(alt.steps[0], (Expect, Silence)):
                raise self.error(here + (i, "steps", 0),
                                 "an alternative must start with expect or silence: "
                                 "the target's answer decides which alternative it followed")
        return OneOf(alternatives=alternatives, **common)

    def requirement(self, req_id, path) -> str | None:
        """A step's or an alternative's requirement: one the case lists."""
        if req_id is not None and self.requirement_ids and req_id not in self.requirement_ids:
            raise self.error(path, f"expected one of the case's requirement ids "
                                   f"({', '.join(sorted(self.requirement_ids))}); got {req_id!r}")
        return req_id

    def flags(self, value, path) -> tuple[int, int]:
        try:
            return tcp.parse_flags(value)
        except tcp.FlagsError as exc:
            raise self.error(path, f"expected flags such as SYN, SYN+ACK, RST+ACK, none, "
                                   f"or tcpdump letters such as S.; {exc}") from None

    def seqexpr(self, value, path):
        if value is None:
            return None
        try:
            return parse_seqexpr(value)
        except ValueError as exc:
            raise self.error(path, f"{exc}; got {value!r}") from None

    def send(self, value, path, common) -> Send:
        flags, optional = self.flags(value["flags"], path + ("flags",))
        if optional:
            raise self.error(path + ("flags",), "optional flags (with ?) only make sense in expect")
        if "data" in value and "len" in value:
            raise self.error(path + ("len",), "give either data or len, not both")
        length = value.get("len", 0)
        payload = value["data"].encode() if "data" in value else \
            pattern(length) if isinstance(length, int) else b""
        options = []
        if "mss" in value:
            options.append(("mss", value["mss"]))
        if "wscale" in value:
            options.append(("wscale", value["wscale"]))
        if value.get("sack_ok"):
            options.append(("sack_ok", True))
        if "timestamp" in value:
            ts = value["timestamp"]
            options.append(("timestamp", (ts["val"], ts.get("ecr", 0))))
        raw = bytes.fromhex(value.get("raw_options", ""))
        size = len(encode_options(options, raw))
        if size > MAX_OPTION_BYTES:
            raise self.error(path + ("raw_options" if raw else "flags",),
                             f"expected at most {MAX_OPTION_BYTES} octets of options "
                             f"(the data offset cannot say more); these take {size}")
        return Send(flags=flags, seq=self.seqexpr(value.get("seq"), path + ("seq",)),
                    ack=self.seqexpr(value.get("ack"), path + ("ack",)),
                    win=value.get("win", 65535), urg=value.get("urg", 0), payload=payload,
                    length=self.seqexpr(length, path + ("len",)) if isinstance(length, str)
                    else None, options=options, raw_options=raw,
                    bad_checksum=value.get("bad_checksum", False), **common)

    def expect(self, value, path, common) -> Expect:
        checks = [k for k in value if k not in ("within", "after")]
        if not checks:
            raise self.error(path, "an expect step needs at least one field to check "
                                   "(flags, seq, ack, win, len, data or an option); "
                                   "to expect no answer, write silence")
        flags = optional = None
        if "flags" in value:
            flags, optional = self.flags(value["flags"], path + ("flags",))
        within = self.duration(value.get("within", DEFAULT_WITHIN), path + ("within",))
        after = self.duration(value.get("after", 0), path + ("after",))
        if after > within:
            raise self.error(path + ("after",), f"expected a time not later than within "
                                                f"({fmt_duration(within)})")
        isn = None
        if "isn" in value:
            if flags is None or not flags & tcp.SYN:
                raise self.error(path + ("isn",), "expected isn only beside flags with SYN: "
                                                  "it compares a new ISN with the old one")
            text = value["isn"].strip()
            operator = next((op for op in ISN_COMPARISONS if text.startswith(op)), "=")
            expression = text[len(operator):] if text.startswith(operator) else text
            isn = (operator, self.seqexpr(expression.strip(), path + ("isn",)))
        required = value.get("requires")
        if required and value.get(required, "absent") == "absent":
            raise self.error(path + ("requires",), f"expected the name of an option this "
                                                   f"step checks for, such as {required}: "
                                                   f"present; {required} is not checked here")
        return Expect(
            flags=flags, optional_flags=optional or 0,
            seq=self.seqexpr(value.get("seq"), path + ("seq",)),
            ack=self.seqexpr(value.get("ack"), path + ("ack",)),
            win=value.get("win"), length=value.get("len"),
            data=value["data"].encode() if "data" in value else None,
            options={k: value[k] for k in tcp.OPTION_NAMES if k in value},
            within=within, after=after, retransmission=value.get("retransmission", False),
            isn=isn, requires_option=value.get("requires"), **common)

    def app(self, value, path, common) -> App:
        if isinstance(value, str):
            return App(op=value, **common)
        (op, argument), = value.items()
        if op == "recv" and argument.isupper() and argument.startswith("E") \
                and argument != "EOF" and not is_errno(argument):
            raise self.error(path + ("recv",), f"expected text, EOF or an errno name such as "
                                               f"ECONNRESET; {argument!r} is no errno name")
        if op in ("accept", "connect"):
            expect_error = argument.get("expect")
            names = expect_error if isinstance(expect_error, list) else [expect_error]
            for name in names:
                if name and not is_errno(name):
                    raise self.error(path + (op, "expect"), f"expected an errno name such as "
                                                            f"ECONNREFUSED; got {name!r}")
            if expect_error:
                expect_error = " or ".join(names)
            return App(op=op, timeout=self.duration(argument.get("timeout", 2.0),
                                                   path + (op, "timeout")),
                       expect_error=expect_error, **common)
        return App(op=op, argument=argument, **common)


def _checks_something(steps) -> bool:
    for step in steps:
        if isinstance(step, (Expect, Silence, StateCheck, FirewallCheck)):
            return True
        if isinstance(step, App) and (step.op == "recv" or step.expect_error):
            return True
        if isinstance(step, OneOf):
            return True
    return False


def _opened_by_app(steps) -> bool:
    """Whether every connection but the first starts with the target's
    application connecting it (from the first one's port)."""
    first: dict[str, object] = {}
    for step in steps:
        first.setdefault(step.conn, step)
    return all(isinstance(step, App) and step.op == "connect"
               for name, step in first.items() if name != DEFAULT_CONNECTION)


def _connections(steps) -> tuple:
    """The connections the steps name, the default one first."""
    names = [DEFAULT_CONNECTION]
    for step in steps:
        inner = [s for alt in step.alternatives for s in alt.steps] if isinstance(step, OneOf) else []
        for each in [step] + inner:
            if each.conn not in names:
                names.append(each.conn)
    return tuple(names)


def cited(ids, marks: Marks, path: Path) -> list[Requirement]:
    """The catalogue's entries for the ids a case cites; each id the catalogue
    does not hold is an error at its line, with the nearest."""
    catalogue = load_catalogue()
    out, found = [], ErrorList()
    for i, req_id in enumerate(ids):
        entry = catalogue.get(req_id)
        if entry is None:
            where = ("requirements", i)
            found.errors.append(CaseError(path, marks.line(where), dotted(where),
                                          catalogue.unknown(req_id)))
        out.append(entry)
    found.check()
    return out


def build_case(data: dict, marks: Marks, path: Path) -> Case:
    """The case of one document, or every error in it: the schema's, then
    those of each part the schema found well formed (the requirements, each
    step, the checks across steps, the setup), in line order."""
    found = ErrorList()
    malformed = schema_errors(data, marks, path, _validator())
    found.errors += malformed.values()
    # A part is read further only if the schema found nothing wrong within it.
    spoilt = {field_path[:2] for field_path in malformed}
    if () in malformed or any(len(p) == 1 and p[0] in ("steps", "requirements", "target")
                              for p in spoilt):
        found.check()     # the document's shape is wrong: nothing more can be read
    requirements: list[Requirement] = []
    if not any(p[:1] == ("requirements",) for p in spoilt):
        with found.checking():
            requirements = cited(data["requirements"], marks, path)
    # The ids as written: an unknown one is reported once, above, not again
    # at each step that names it.
    builder = _Builder(path, marks, [r for r in data["requirements"] if isinstance(r, str)])
    steps = []
    for i, item in enumerate(data["steps"]):
        if ("steps", i) not in spoilt:
            with found.checking():
                steps.append(builder.step(item, ("steps", i)))
    target = data["target"]
    connections = _connections(steps)
    if not found.errors:      # across steps: only once each step could be read
        with found.checking():
            _check_across_steps(steps, connections, target, marks, path)
    setups = load_setups()
    key = (target.get("role"), target.get("start"))
    if not any(p[:1] == ("target",) for p in spoilt) and key not in setups:
        names = sorted(name for role, name in setups if role == target["role"])
        found.errors.append(CaseError(
            path, marks.line(("target", "start")), "target.start",
            f"expected a setup for role {target['role']}: {', '.join(names)}; "
            f"got {target['start']!r}"))
    found.check()
    return Case(
        id=data["id"], title=data["title"], requirements=requirements,
        role=target["role"], start=target["start"], steps=steps, path=path,
        line=marks.line(()) or 1, description=data.get("description", ""),
        marks=list(data.get("marks", [])), backlog=target.get("backlog", DEFAULT_BACKLOG),
        middlebox=target.get("middlebox"),
        sockopts=dict(target.get("sockopts", {})),
        sysctls={k: str(v) for k, v in target.get("sysctls", {}).items()},
        families=tuple(f for f in FAMILIES if f in data.get("families", FAMILIES)),
        setup_steps=setups[key], connections=connections,
    )


def _check_across_steps(steps, connections, target, marks: Marks, path: Path) -> None:
    found = ErrorList()
    if not _checks_something(steps):
        found.errors.append(CaseError(path, marks.line(("steps",)), "steps",
                                      "the case checks nothing: add an expect, silence, "
                                      "state, recv or firewall step"))
    for i, step in enumerate(steps):
        other = getattr(step, "same_mapping_as", None)
        if other is not None and (other not in connections or other == step.conn):
            found.errors.append(CaseError(
                path, step.line, f"steps[{i}].firewall.same_mapping_as",
                f"expected another of the case's connections "
                f"({', '.join(c for c in connections if c != step.conn)}); got {other!r}"))
    if len(connections) > 1 and target["role"] != "listener" and not _opened_by_app(steps):
        found.errors.append(CaseError(
            path, marks.line(("target", "role")), "target.role",
            "several connections (conn:) need role listener, where the target's application "
            "accepts them on one listening port, or a client whose application opens each "
            "further one (its first step: app: connect)"))
    found.check()


# --- setups --------------------------------------------------------------------

@lru_cache(maxsize=None)
def load_setups() -> dict[tuple[str, str], list]:
    """The reusable starting points, keyed by (role, name), from setups.yaml."""
    setups: dict[tuple[str, str], list] = {}
    for data, marks in load_yaml_documents(SETUPS_PATH):
        for i, entry in enumerate(data["setups"]):
            builder = _Builder(SETUPS_PATH, marks)
            prefix = []
            if "from" in entry:
                prefix = setups[(entry["role"], entry["from"])]
            steps = builder.steps(entry.get("steps", []), ("setups", i, "steps"))
            setups[(entry["role"], entry["name"])] = prefix + steps
    return setups


def script(case: Case) -> list[str]:
    """The case's steps as the arrows an engineer draws: what the case expects,
    shown beside what the wire showed on the report's case pages."""
    return [text for _line, text in _script(case)]


def script_lines(case: Case) -> list[int | None]:
    """For each line of script(case), the case file's line of its step (None
    for the heading and an alternative's label)."""
    return [line for line, _text in _script(case)]


def _script(case: Case) -> list[tuple[int | None, str]]:
    several = len(case.connections) > 1
    lines: list[tuple[int | None, str]] = [(None, f"target: {case.role}, starting in {case.start}")]

    def walk(steps, indent: str) -> None:
        for step in steps:
            conn = f"{step.conn}: " if several else ""
            at = step.line
            if isinstance(step, Send):
                lines.append((at, f"{indent}--> {conn}{step.describe()}"))
            elif isinstance(step, Expect):
                lines.append((at, f"{indent}<-- {conn}{step.describe()}"))
            elif isinstance(step, Silence):
                lines.append((at, f"{indent}<-- {conn}nothing for {fmt_duration(step.duration)}"))
            elif isinstance(step, Wait):
                lines.append((at, f"{indent}    wait {fmt_duration(step.duration)}"))
            elif isinstance(step, App):
                lines.append((at, f"{indent}    {conn}app: {step.describe()}"))
            elif isinstance(step, StateCheck):
                lines.append((at, f"{indent}    {conn}state {step.state}"))
            elif isinstance(step, FirewallCheck):
                lines.append((at, f"{indent}    {conn}{step.describe()}"))
            elif isinstance(step, OneOf):
                lines.append((at, f"{indent}    one of:"))
                for alternative in step.alternatives:
                    verdict = "conforms to" if alternative.conforms else "breaks"
                    lines.append((None, f"{indent}      {alternative.label} ({verdict} "
                                        f"{alternative.requirement}):"))
                    walk(alternative.steps, indent + "        ")

    walk(case.steps, "")
    return lines
