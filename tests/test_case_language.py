"""The case language: loading YAML case files and reporting every problem
as a CaseError at file, line and field (conformance.case)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.case import Case, CaseError, load_setups
from conformance.casefile import load_case_file
from conformance.steps import (
    MAX_DURATION,
    Alternative,
    App,
    Expect,
    OneOf,
    Send,
    SeqExpr,
    Silence,
    StateCheck,
    Wait,
    parse_duration,
    parse_seqexpr,
)
from conformance.tcp import ACK, FIN, PSH, RST, SYN

REPO = Path(__file__).resolve().parents[1]
CASE_FILES = sorted(REPO.glob("cases/**/*.yaml"))

STEP_KEYS = ("send", "expect", "silence", "app", "state", "wait", "one_of")

# A valid case starts with this header; tests append their steps (indented by
# two spaces under "steps:").
HEADER = """\
# a case written by a test
id: t.case
title: A test case
requirements: [RFC9293-MUST-13, RFC5961-3.2-challenge-ack]
target:
  role: {role}
  start: {start}
steps:
"""


def case_text(steps: str, role: str = "listener", start: str = "LISTEN") -> str:
    """HEADER plus the given steps (written flush left, indented here)."""
    steps = textwrap.indent(textwrap.dedent(steps).strip("\n") + "\n", "  ")
    return HEADER.replace("{role}", role).replace("{start}", start) + steps


VALID_STEPS = """\
- send:   {flags: SYN, seq: 0, mss: 1460}
- expect: {flags: SYN+ACK, ack: 1}
"""


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the given occurrence of a line containing marker."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(lines) >= occurrence, f"{marker!r} occurs {len(lines)} times"
    return lines[occurrence - 1]


def load(tmp_path: Path, text: str, name: str = "case.yaml") -> list[Case]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_case_file(path)


def load_error(tmp_path: Path, text: str, name: str = "case.yaml") -> CaseError:
    """The CaseError that loading the text raises; it must name the file."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as info:
        load_case_file(path)
    assert info.value.path == str(path)
    return info.value


# --- the repository's own cases ---------------------------------------------------

def test_repository_has_case_files():
    """The glob finds the case files under cases/."""
    assert CASE_FILES, f"no cases/**/*.yaml under {REPO}"


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_case_file_loads(path):
    """Each file under cases/ loads into at least one case with steps."""
    cases = load_case_file(path)
    assert cases
    for case in cases:
        assert case.steps and case.requirements
        assert case.path == path


def test_text_argument_overrides_the_file(tmp_path):
    """load_case_file(path, text) parses the text without reading the path."""
    cases = load_case_file(tmp_path / "does-not-exist.yaml", case_text(VALID_STEPS))
    assert [c.id for c in cases] == ["t.case"]


def test_missing_file(tmp_path):
    """A file that cannot be read is a CaseError, not an OSError."""
    with pytest.raises(CaseError, match="cannot be read"):
        load_case_file(tmp_path / "missing.yaml")


# --- CaseError ---------------------------------------------------------------------

def test_case_error_attributes_and_str():
    """CaseError keeps path, line, field and message; str() is 'file:line: field: message'."""
    error = CaseError(Path("cases/x.yaml"), 12, "steps[0].send.seq", "expected a number")
    assert (error.path, error.line, error.field, error.message) == (
        "cases/x.yaml", 12, "steps[0].send.seq", "expected a number")
    assert str(error) == "cases/x.yaml:12: steps[0].send.seq: expected a number"


def test_case_error_without_field_or_line():
    """Without a field the field part is left out; without a line, the line part."""
    assert str(CaseError("a.yaml", 3, "", "not valid YAML")) == "a.yaml:3: not valid YAML"
    assert str(CaseError("a.yaml", None, "id", "bad")) == "a.yaml: id: bad"


def test_loaded_error_str_has_file_line_field(tmp_path):
    """An error from a real file formats as file:line: field: message."""
    text = case_text("- send: {flags: SYN, seq: foo + 1}\n- silence: 1s")
    error = load_error(tmp_path, text)
    assert str(error) == f"{tmp_path / 'case.yaml'}:{error.line}: {error.field}: {error.message}"


# --- a valid case ------------------------------------------------------------------

def test_minimal_case_loads(tmp_path):
    """A minimal valid case gives id, title, requirements, role, start and typed steps."""
    text = case_text("""\
        - send:   {flags: SYN, seq: 0, mss: 1460}
        - expect: {flags: SYN+ACK, ack: 1, mss: present}
        - silence: 300ms
        - app:    accept
        - state:  ESTABLISHED
        - wait:   1s
        - one_of:
            - label: challenge ACK
              requirement: RFC5961-3.2-challenge-ack
              steps:
                - expect: {flags: ACK}
            - label: reset
              requirement: RFC5961-3.2-challenge-ack
              conforms: false
              note: what RFC 793 did
              steps:
                - silence: 300ms
                - state: CLOSED
        """)
    (case,) = load(tmp_path, text)
    assert case.id == "t.case"
    assert case.title == "A test case"
    assert [r.id for r in case.requirements] == ["RFC9293-MUST-13", "RFC5961-3.2-challenge-ack"]
    assert case.primary.id == "RFC9293-MUST-13"
    assert case.primary.citation == "RFC 9293 section 3.6.1"
    assert (case.role, case.start) == ("listener", "LISTEN")
    assert case.path == tmp_path / "case.yaml"
    assert case.line == line_of(text, "id: t.case")
    assert [type(s) for s in case.steps] == [Send, Expect, Silence, App, StateCheck, Wait, OneOf]


def test_step_fields(tmp_path):
    """Each step carries its values and the line of its action."""
    text = case_text("""\
        - send:   {flags: SYN, seq: 0, mss: 1460}
          note: the SYN
          requirement: RFC5961-3.2-challenge-ack
        - expect: {flags: SYN+ACK, ack: 1, mss: present}
        - silence: 300ms
        - app:    accept
        - state:  ESTABLISHED
        """)
    send, expect, silence, app, state = load(tmp_path, text)[0].steps
    assert send.flags == SYN and send.seq == SeqExpr(0, (), "0")
    assert send.options == [("mss", 1460)]
    assert send.note == "the SYN" and send.requirement == "RFC5961-3.2-challenge-ack"
    assert send.line == line_of(text, "- send:")
    assert expect.flags == SYN | ACK and expect.ack.evaluate({}) == 1
    assert expect.options == {"mss": "present"}
    assert expect.line == line_of(text, "- expect:")
    assert expect.requirement is None
    assert silence.duration == pytest.approx(0.3)
    assert app.op == "accept"
    assert state.state == "ESTABLISHED"


def test_one_of_alternatives(tmp_path):
    """one_of gives labelled alternatives; conforms defaults to true."""
    text = case_text("""\
        - send: {flags: RST, seq: snd_nxt + 100}
        - one_of:
            - label: challenge ACK
              requirement: RFC5961-3.2-challenge-ack
              steps:
                - expect: {flags: ACK, seq: rcv_nxt, ack: snd_nxt}
                - state:  ESTABLISHED
            - label: reset
              requirement: RFC5961-3.2-challenge-ack
              conforms: false
              note: what RFC 793 did
              steps:
                - silence: 300ms
        """, start="ESTABLISHED")
    one_of = load(tmp_path, text)[0].steps[1]
    assert isinstance(one_of, OneOf)
    first, second = one_of.alternatives
    assert isinstance(first, Alternative)
    assert (first.label, first.conforms, first.note) == ("challenge ACK", True, None)
    assert [type(s) for s in first.steps] == [Expect, StateCheck]
    assert (second.label, second.conforms, second.note) == ("reset", False, "what RFC 793 did")
    assert [type(s) for s in second.steps] == [Silence]


@pytest.mark.parametrize("role, start, kinds", [
    ("listener", "LISTEN", []),
    ("listener", "SYN-RECEIVED", [Send, Expect, StateCheck]),
    ("listener", "ESTABLISHED", [Send, Expect, Send, App, StateCheck]),
    ("listener", "CLOSE-WAIT", [Send, Expect, Send, App, StateCheck, Send, Expect, StateCheck]),
    ("client", "CLOSED", []),
    ("client", "ESTABLISHED", [App, Expect, StateCheck, Send, Expect, StateCheck]),
])
def test_setup_steps_come_from_setups_yaml(tmp_path, role, start, kinds):
    """setup_steps are the (role, start) entry of setups.yaml, 'from' setups first."""
    (case,) = load(tmp_path, case_text(VALID_STEPS, role=role, start=start))
    assert case.setup_steps == load_setups()[(role, start)]
    assert [type(s) for s in case.setup_steps] == kinds


def test_listener_and_client_established_differ(tmp_path):
    """The same start name means a different setup for each role."""
    setups = load_setups()
    assert setups[("listener", "ESTABLISHED")] != setups[("client", "ESTABLISHED")]
    assert ("client", "LISTEN") not in setups


def test_target_backlog_sockopts_and_marks(tmp_path):
    """Optional target fields and marks are carried over; defaults otherwise."""
    text = case_text(VALID_STEPS).replace(
        "  start: LISTEN\n",
        "  start: LISTEN\n  backlog: 1\n  sockopts: {SO_RCVBUF: 4096, TCP_NODELAY: true}\n",
    ) + "marks: [slow, rfc793]\n"
    (case,) = load(tmp_path, text)
    assert case.backlog == 1
    assert case.sockopts == {"SO_RCVBUF": 4096, "TCP_NODELAY": True}
    assert case.marks == ["slow", "rfc793"]
    (plain,) = load(tmp_path, case_text(VALID_STEPS), name="plain.yaml")
    assert (plain.backlog, plain.sockopts, plain.marks, plain.description) == (5, {}, [], "")


def test_description_field(tmp_path):
    """A top-level description is allowed and kept in Case.description."""
    text = case_text(VALID_STEPS).replace("title: A test case\n",
                                          "title: A test case\ndescription: free text\n")
    (case,) = load(tmp_path, text)
    assert case.description == "free text"


# --- sequence expressions -----------------------------------------------------------

VARIABLES = {"snd_nxt": 1, "snd_una": 1, "rcv_nxt": 1, "snd_wnd": 64240}


def test_seq_expression_evaluates(tmp_path):
    """seq: snd_nxt + snd_wnd + 100 parses and evaluates against connection variables."""
    text = case_text("""\
        - send:   {flags: RST, seq: snd_nxt + snd_wnd + 100}
        - silence: 300ms
        """, start="ESTABLISHED")
    seq = load(tmp_path, text)[0].steps[0].seq
    assert seq.evaluate(VARIABLES) == 1 + 64240 + 100
    assert seq.evaluate({**VARIABLES, "snd_nxt": 1000}) == 1000 + 64240 + 100
    assert str(seq) == "snd_nxt + snd_wnd + 100"


def test_seq_negative_constant(tmp_path):
    """seq: -10 is a plain negative relative number."""
    text = case_text("""\
        - send:   {flags: SYN, seq: -10}
        - expect: {flags: SYN+ACK, ack: -9}
        """)
    send, expect = load(tmp_path, text)[0].steps
    assert send.seq.evaluate({}) == -10
    assert expect.ack.evaluate({}) == -9


@pytest.mark.parametrize("text, constant, names", [
    ("snd_nxt - 1", -1, ((1, "snd_nxt"),)),
    ("rcv_nxt-1", -1, ((1, "rcv_nxt"),)),
    ("-10", -10, ()),
    ("- snd_una + 5", 5, ((-1, "snd_una"),)),
    ("snd_nxt - snd_una", 0, ((1, "snd_nxt"), (-1, "snd_una"))),
    (7, 7, ()),
])
def test_parse_seqexpr(text, constant, names):
    """parse_seqexpr splits an expression into a constant and signed names."""
    expr = parse_seqexpr(text)
    assert (expr.constant, expr.names) == (constant, names)


@pytest.mark.parametrize("text", ["foo + 1", "snd_nxt snd_una", "1 2", "+", "snd_nxt + -1"])
def test_parse_seqexpr_rejects(text):
    """Unknown names and terms without an operator are ValueErrors."""
    with pytest.raises(ValueError, match="expected"):
        parse_seqexpr(text)


def test_unknown_name_in_seq(tmp_path):
    """seq: foo + 1 is a CaseError at steps[0].send.seq, on its line, listing the names."""
    text = case_text("""\
        - send:   {flags: SYN, seq: foo + 1}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.seq"
    assert error.line == line_of(text, "seq: foo + 1")
    assert "unknown name 'foo'" in error.message
    assert "snd_nxt, snd_una, rcv_nxt, snd_wnd" in error.message


def test_blank_seq_is_an_error(tmp_path):
    """seq: '  ' is not a sequence number and must be reported."""
    text = case_text("""\
        - send:   {flags: SYN, seq: "  "}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.seq"


# --- durations ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    ("300ms", 0.3), ("1.5s", 1.5), ("250us", 250e-6), (2, 2.0), (0.5, 0.5),
    ("2s", 2.0), ("10 ms", 0.01), (0, 0.0),
])
def test_parse_duration(value, seconds):
    """Durations with us, ms or s, or plain numbers of seconds, become seconds."""
    assert parse_duration(value) == pytest.approx(seconds)


def test_durations_in_a_case(tmp_path):
    """silence, wait, expect within/after and state within all take durations."""
    text = case_text("""\
        - send:    {flags: SYN, seq: 0}
        - expect:  {flags: SYN+ACK, within: 250us}
        - expect:  {flags: ACK, within: 1.5s, after: 300ms}
        - silence: 300ms
        - wait:    2
        - state:   {is: SYN-RECEIVED, within: 1.5s}
        - state:   SYN-RECEIVED
        - expect:  {flags: ACK}
        """)
    _, e1, e2, silence, wait, s1, s2, e3 = load(tmp_path, text)[0].steps
    assert e1.within == pytest.approx(250e-6) and e1.after == 0.0
    assert (e2.within, e2.after) == (pytest.approx(1.5), pytest.approx(0.3))
    assert silence.duration == pytest.approx(0.3)
    assert wait.duration == 2.0
    assert (s1.state, s1.within) == ("SYN-RECEIVED", pytest.approx(1.5))
    assert s2.within == pytest.approx(0.2)   # the default for a state check
    assert e3.within == pytest.approx(1.0)   # the default for an expect


@pytest.mark.parametrize("value", ["1.5.3s", ".5s", "5 minutes", "-1", "fast"])
def test_bad_duration(tmp_path, value):
    """A duration that is neither number nor number+unit names the field and what is expected."""
    text = case_text(f"""\
        - send:    {{flags: SYN, seq: 0}}
        - silence: "{value}"
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].silence"
    assert error.line == line_of(text, "- silence:")
    assert error.message.startswith("expected a duration such as 300ms")


@pytest.mark.parametrize("value", [".nan", ".inf", "1.0e+9", "601", '"700s"', '"600001ms"'])
def test_a_duration_must_be_finite_and_at_most_ten_minutes(tmp_path, value):
    """NaN would pass every time check and infinity hang the sweep: both, and any
    time over MAX_DURATION, are refused at the field."""
    text = case_text(f"""\
        - send:    {{flags: SYN, seq: 0}}
        - expect:  {{flags: SYN+ACK, within: {value}}}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].expect.within"
    assert error.message.startswith(f"expected a duration from 0 to {MAX_DURATION:g}s")


def test_separators_without_a_flag_are_an_error(tmp_path):
    """flags: + (a typo) names the field, not a traceback."""
    error = load_error(tmp_path, case_text("- send: {flags: +, seq: 0}\n- silence: 1s"))
    assert error.field == "steps[0].send.flags" and "no flag in '+'" in error.message


def test_after_later_than_within(tmp_path):
    """expect after must not be later than within."""
    text = case_text("- expect: {flags: ACK, within: 100ms, after: 1s}")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].expect.after"
    assert "not later than within (100ms)" in error.message


# --- YAML problems -------------------------------------------------------------------------

def test_broken_yaml(tmp_path):
    """An unclosed { is 'not valid YAML' with a line number at or after the brace."""
    text = case_text("""\
        - send:   {flags: SYN, seq: 0
        - expect: {flags: SYN+ACK, ack: 1}
        """)
    error = load_error(tmp_path, text)
    assert "not valid YAML" in error.message
    assert isinstance(error.line, int)
    assert line_of(text, "{flags: SYN, seq: 0") <= error.line <= len(text.splitlines()) + 1
    assert error.field == ""


def test_broken_yaml_line_is_exact(tmp_path):
    """A stray tab-indented line is reported on that line."""
    text = case_text(VALID_STEPS) + "\tcolour: red\n"
    error = load_error(tmp_path, text)
    assert "not valid YAML" in error.message
    assert error.line == line_of(text, "colour: red")


def test_duplicated_key(tmp_path):
    """A field given twice is reported at its second occurrence."""
    text = case_text(VALID_STEPS).replace("title: A test case\n",
                                          "title: A test case\ntitle: Again\n")
    error = load_error(tmp_path, text)
    assert error.field == "title"
    assert error.line == line_of(text, "title: Again")
    assert "given twice" in error.message


def test_duplicated_key_in_flow_mapping(tmp_path):
    """A key repeated inside {...} names the nested field."""
    text = case_text("""\
        - send:   {flags: SYN, flags: ACK}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.flags"
    assert error.line == line_of(text, "flags: SYN, flags: ACK")
    assert "given twice" in error.message


def test_empty_file(tmp_path):
    """A file with no document is an error, not an empty list."""
    error = load_error(tmp_path, "# only a comment\n")
    assert "holds no case" in error.message


def test_document_that_is_not_a_mapping(tmp_path):
    """A document that is a list is 'expected a case'."""
    error = load_error(tmp_path, "- id: x\n")
    assert error.message.startswith("expected a case")
    assert error.line == 1


def test_two_documents_give_two_cases(tmp_path):
    """A file with two YAML documents gives two cases, each with its own line."""
    first = case_text(VALID_STEPS)
    second = case_text(VALID_STEPS).replace("id: t.case", "id: t.second")
    text = first + "---\n" + second
    cases = load(tmp_path, text)
    assert [c.id for c in cases] == ["t.case", "t.second"]
    assert cases[0].line == line_of(text, "id: t.case")
    assert cases[1].line == line_of(text, "id: t.second")
    assert cases[1].steps[0].line == line_of(text, "- send:", occurrence=2)


def test_error_in_second_document_has_file_line(tmp_path):
    """Lines in the second document count from the top of the file."""
    second = case_text(VALID_STEPS).replace("id: t.case", "id: t.second").replace(
        "seq: 0", "seq: bar")
    text = case_text(VALID_STEPS) + "---\n" + second
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.seq"
    assert error.line == line_of(text, "seq: bar")


# --- schema errors ---------------------------------------------------------------------------

def test_unknown_top_level_field(tmp_path):
    """colour: red at top level is an unknown field, on the line of that key."""
    text = case_text(VALID_STEPS).replace("target:\n", "colour: red\ntarget:\n")
    error = load_error(tmp_path, text)
    assert error.field == "colour"
    assert error.line == line_of(text, "colour: red")
    assert "unknown field 'colour'" in error.message
    assert "expected one of" in error.message and "title" in error.message


def test_unknown_field_in_send(tmp_path):
    """{flags: SYN, sequence: 5} names steps[0].send.sequence and its line."""
    text = case_text("""\
        - expect: {flags: SYN, mss: present}
        - send:   {flags: SYN, sequence: 5}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].send.sequence"
    assert error.line == line_of(text, "sequence: 5")
    assert "unknown field 'sequence'" in error.message
    assert "seq" in error.message.split("expected one of", 1)[1]


def test_unknown_block_field_points_at_its_key(tmp_path):
    """An unknown field whose value is on the following lines is reported at the key."""
    text = case_text("""\
        - send:
            flags: SYN
            sequence:
              - 5
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.sequence"
    assert error.line == line_of(text, "sequence:")


def test_unknown_step_kind(tmp_path):
    """- sned: {flags: SYN} names the field and lists the allowed step keys."""
    text = case_text("""\
        - sned: {flags: SYN}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].sned"
    assert error.line == line_of(text, "- sned:")
    assert "unknown field 'sned'" in error.message
    assert ", ".join(STEP_KEYS) in error.message


def test_wrong_type_in_send(tmp_path):
    """win: "big" is 'expected a window from 0 to 65535' at steps[0].send.win."""
    text = case_text("""\
        - send:   {flags: SYN, win: "big"}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.win"
    assert error.line == line_of(text, 'win: "big"')
    assert error.message == "expected a window from 0 to 65535; got 'big'"


def test_out_of_range_in_send(tmp_path):
    """win: 70000 is out of range and reported like a wrong type."""
    text = case_text("""\
        - send:   {flags: SYN, win: 70000}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.win"
    assert error.message.startswith("expected a window from 0 to 65535")


def test_unknown_requirement_id(tmp_path):
    """An id the catalogue lacks is an error at requirements[i], naming the nearest ids."""
    text = case_text(VALID_STEPS).replace("RFC5961-3.2-challenge-ack]", "RFC5961-3.2-challenge-akc]")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[1]"
    assert error.line == line_of(text, "requirements:")
    assert "RFC5961-3.2-challenge-akc" in error.message
    assert "RFC5961-3.2-challenge-ack" in error.message


def test_requirement_written_inline_is_refused(tmp_path):
    """The old inline form (id, level, text) is refused: ids cite the catalogue."""
    text = case_text(VALID_STEPS).replace(
        "requirements: [RFC9293-MUST-13, RFC5961-3.2-challenge-ack]",
        "requirements:\n  - id: RFC9293-MUST-13\n    level: MUST\n    text: made up")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0]"
    assert error.line == line_of(text, "- id: RFC9293-MUST-13")


def test_missing_title(tmp_path):
    """A case without title: 'the field 'title' is missing', at the case's first line."""
    text = case_text(VALID_STEPS).replace("title: A test case\n", "")
    error = load_error(tmp_path, text)
    assert error.message == "the field 'title' is missing"
    assert error.field == ""
    assert error.line == line_of(text, "id: t.case")


def test_empty_steps(tmp_path):
    """steps: [] is rejected by the schema."""
    text = case_text(VALID_STEPS).split("steps:\n")[0] + "steps: []\n"
    error = load_error(tmp_path, text)
    assert error.field == "steps"
    assert error.line == line_of(text, "steps: []")


def test_bad_state_name(tmp_path):
    """state: OPEN is not a TCP state; the message lists what is."""
    text = case_text("- state: OPEN")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].state"
    assert error.line == line_of(text, "- state: OPEN")
    assert "ESTABLISHED" in error.message and "got 'OPEN'" in error.message


# --- semantic errors --------------------------------------------------------------------------

def test_step_with_two_actions(tmp_path):
    """{send: ..., expect: ...} in one list item needs 'exactly one of'."""
    text = case_text("""\
        - expect: {flags: SYN}
        - {send: {flags: SYN}, expect: {flags: SYN+ACK}}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1]"
    assert error.line == line_of(text, "- {send:")
    assert "exactly one of " + ", ".join(STEP_KEYS) in error.message
    assert "got send, expect" in error.message


def test_step_with_no_action(tmp_path):
    """A step with only a note has no action."""
    text = case_text("""\
        - expect: {flags: SYN}
        - note: just a note
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1]"
    assert "exactly one of" in error.message and "got none" in error.message


def test_expect_without_expectation(tmp_path):
    """expect: {within: 1s} checks nothing and must name a field to check."""
    text = case_text("""\
        - send:   {flags: SYN, seq: 0}
        - expect: {within: 1s}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].expect"
    assert error.line == line_of(text, "expect: {within: 1s}")
    assert "needs at least one field to check" in error.message
    assert "silence" in error.message


def test_case_that_checks_nothing(tmp_path):
    """A case with only send steps 'checks nothing'."""
    text = case_text("""\
        - send: {flags: SYN, seq: 0}
        - send: {flags: ACK}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps"
    assert "checks nothing" in error.message


@pytest.mark.parametrize("steps", [
    "- send: {flags: SYN}\n- app: {recv: EOF}",
    "- app: {connect: {expect: ECONNREFUSED}}",
    "- send: {flags: SYN}\n- state: LISTEN",
    "- silence: 1s",
])
def test_cases_that_check_something(tmp_path, steps):
    """recv, an expected errno, a state check or a silence each count as a check."""
    assert load(tmp_path, case_text(steps))


def test_unknown_setup(tmp_path):
    """start: NOWHERE lists the known setups for the role."""
    text = case_text(VALID_STEPS, start="NOWHERE")
    error = load_error(tmp_path, text)
    assert error.field == "target.start"
    assert error.line == line_of(text, "start: NOWHERE")
    listener = sorted(name for role, name in load_setups() if role == "listener")
    assert f"expected a setup for role listener: {', '.join(listener)}" in error.message
    assert "got 'NOWHERE'" in error.message


def test_unknown_setup_lists_only_that_role(tmp_path):
    """For a client, LISTEN is not a known setup and only client setups are listed."""
    error = load_error(tmp_path, case_text(VALID_STEPS, role="client", start="LISTEN"))
    assert "expected a setup for role client: CLOSED, ESTABLISHED, SYN-SENT;" in error.message


def test_bad_flags_in_send(tmp_path):
    """flags: SYNACK names steps[0].send.flags and says what flags look like."""
    text = case_text("""\
        - send:   {flags: SYNACK}
        - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.flags"
    assert error.line == line_of(text, "flags: SYNACK")
    assert error.message.startswith("expected flags such as SYN, SYN+ACK")
    assert "'SYNACK'" in error.message


def test_bad_flags_in_expect(tmp_path):
    """Bad flags in an expect are reported at steps[N].expect.flags."""
    text = case_text("""\
        - send:   {flags: SYN}
        - expect: {flags: XYZ}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].expect.flags"
    assert error.line == line_of(text, "flags: XYZ")


def test_flags_must_be_text(tmp_path):
    """flags: 5 is not text."""
    text = case_text("- send: {flags: 5}\n- silence: 1s")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.flags"
    assert error.message.startswith("expected flags such as SYN")


def test_flags_in_a_case(tmp_path):
    """Flags in send and expect use the same parser, with optional flags in expect."""
    text = case_text("""\
        - send:   {flags: FP.}
        - expect: {flags: ACK+(PSH)}
        - expect: {flags: R.}
        - expect: {flags: none}
        """)
    send, e1, e2, e3 = load(tmp_path, text)[0].steps
    assert send.flags == FIN | PSH | ACK
    assert (e1.flags, e1.optional_flags) == (ACK, PSH)
    assert e1.describe().startswith("ACK+(PSH)")
    assert e2.flags == RST | ACK
    assert e3.flags == 0


def test_optional_flags_in_send(tmp_path):
    """Optional flags only make sense in expect."""
    text = case_text("- send: {flags: ACK+(PSH)}\n- silence: 1s")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.flags"
    assert "only make sense in expect" in error.message


def test_send_data_and_len(tmp_path):
    """A send with both data and len is an error at its len."""
    text = case_text("- send: {flags: ACK, data: abc, len: 3}\n- silence: 1s")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.len"
    assert "either data or len" in error.message


def test_send_payload(tmp_path):
    """data is sent as UTF-8; len sends a recognisable pattern of that length."""
    text = case_text("- send: {flags: ACK, data: hi}\n- send: {flags: ACK, len: 40}\n"
                     "- silence: 1s")
    a, b, _ = load(tmp_path, text)[0].steps
    assert a.payload == b"hi"
    assert len(b.payload) == 40 and b.payload.startswith(b"abcdefghij")


def test_requirement_not_of_the_case(tmp_path):
    """A step's requirement must be one of the case's requirement ids."""
    text = case_text("""\
        - send:   {flags: SYN}
          requirement: RFC9293-MUST-13
        - expect: {flags: SYN+ACK}
          requirement: RFC9293-MUST-9
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].requirement"
    assert error.line == line_of(text, "requirement: RFC9293-MUST-9")
    assert "RFC5961-3.2-challenge-ack, RFC9293-MUST-13" in error.message and "got 'RFC9293-MUST-9'" in error.message


def test_step_requirement_selects_the_requirement(tmp_path):
    """Case.requirement() finds a step's requirement, and falls back to the primary."""
    text = case_text("- send: {flags: SYN}\n- expect: {flags: SYN+ACK}\n  requirement: RFC5961-3.2-challenge-ack")
    case = load(tmp_path, text)[0]
    assert case.requirement(case.steps[1].requirement).id == "RFC5961-3.2-challenge-ack"
    assert case.requirement(None).id == "RFC9293-MUST-13"


def test_one_of_alternative_must_start_with_expect_or_silence(tmp_path):
    """An alternative that starts with send cannot be told apart by the target's answer."""
    text = case_text("""\
        - send: {flags: SYN}
        - one_of:
            - label: a
              requirement: RFC9293-MUST-13
              steps:
                - expect: {flags: SYN+ACK}
            - label: b
              requirement: RFC9293-MUST-13
              steps:
                - send: {flags: RST}
                - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].one_of[1].steps[0]"
    assert error.line == line_of(text, "- send: {flags: RST}")
    assert "must start with expect or silence" in error.message


def test_one_of_needs_two_alternatives(tmp_path):
    """A one_of with a single alternative is rejected."""
    text = case_text("""\
        - one_of:
            - label: only
              requirement: RFC9293-MUST-13
              steps:
                - silence: 1s
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].one_of"


def test_app_recv_unknown_errno(tmp_path):
    """app: {recv: ENOTANERRNO} is not an errno name."""
    text = case_text("- app: {recv: ENOTANERRNO}")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].app.recv"
    assert error.line == line_of(text, "ENOTANERRNO")
    assert "'ENOTANERRNO' is no errno name" in error.message
    assert "ECONNRESET" in error.message


@pytest.mark.parametrize("argument", ["ECONNRESET", "EOF", "hello world", "ETIMEDOUT"])
def test_app_recv_accepted(tmp_path, argument):
    """recv takes text, EOF or a real errno name."""
    (case,) = load(tmp_path, case_text(f"- app: {{recv: {argument}}}"))
    app = case.steps[0]
    assert (app.op, app.argument) == ("recv", argument)


def test_app_forms(tmp_path):
    """app takes a bare operation or a one-key mapping."""
    text = case_text("""\
        - app: listen
        - app: {send: hello}
        - app: {setsockopt: {SO_LINGER: 0}}
        - app: {connect: {timeout: 300ms, expect: ECONNREFUSED}}
        - app: {recv: EOF}
        """)
    listen, send, setsockopt, connect, recv = load(tmp_path, text)[0].steps
    assert listen.op == "listen" and listen.argument is None
    assert (send.op, send.argument) == ("send", "hello")
    assert setsockopt.argument == {"SO_LINGER": 0}
    assert (connect.op, connect.expect_error) == ("connect", "ECONNREFUSED")
    assert connect.timeout == pytest.approx(0.3)
    assert recv.describe() == "recv -> EOF"
    # The ladder writes the call, then the outcome it got; the case, the outcome it wants.
    assert (connect.call(), connect.describe()) == ("connect", "connect -> ECONNREFUSED")
    assert (recv.call(), send.call()) == ("recv", "send 'hello'")


def test_app_connect_unknown_errno(tmp_path):
    """connect: {expect: EFOO} is not an errno name."""
    text = case_text("- app: {connect: {expect: EFOO}}")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].app.connect.expect"
    assert "ECONNREFUSED" in error.message


def test_bad_app_operation(tmp_path):
    """app: jump is not an application operation."""
    text = case_text("- app: jump\n- silence: 1s")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].app"
    assert error.message.startswith("expected an action of the target's application")


# -- several connections, families, settings, raw options -------------------------------

def test_connections_are_named_in_order_of_use(tmp_path):
    """conn: names the connection a step is about; 'a' is the first."""
    (case,) = load(tmp_path, case_text(
        "  - send: {flags: SYN}\n    conn: c\n  - silence: 1s\n"
        "  - send: {flags: SYN}\n    conn: b\n  - silence: 1s\n    conn: b\n"))
    assert case.connections == ("a", "c", "b")
    assert [step.conn for step in case.steps] == ["c", "a", "b", "b"]


def test_several_connections_need_a_listener(tmp_path):
    """A client case cannot open several connections: one error at target.role."""
    text = case_text("  - send: {flags: SYN}\n    conn: b\n  - silence: 1s\n",
                     role="client", start="CLOSED")
    error = load_error(tmp_path, text)
    assert error.field == "target.role" and "several connections" in error.message
    assert error.line == line_of(text, "target:") + 1


def test_connection_name_is_checked(tmp_path):
    """A connection name is lower-case letters and digits."""
    text = case_text("  - send: {flags: SYN}\n    conn: B\n  - silence: 1s\n")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].conn" and "name of the connection" in error.message


def test_families_sysctls_and_raw_options(tmp_path):
    """families restricts the address families; sysctls and raw option bytes are kept."""
    text = case_text("  - send: {flags: SYN, raw_options: '01 fe 04 ab cd'}\n  - silence: 1s\n")
    text = text.replace("target:\n", "families: [ipv6]\ntarget:\n  sysctls: {net.ipv4.tcp_rfc1337: 1}\n")
    (case,) = load(tmp_path, text)
    assert case.families == ("ipv6",)
    assert case.sysctls == {"net.ipv4.tcp_rfc1337": "1"}
    assert case.steps[0].raw_options == bytes.fromhex("01fe04abcd")


def test_options_longer_than_the_header_allows(tmp_path):
    """More than 40 octets of options is an error naming raw_options."""
    text = case_text("  - send: {flags: SYN, mss: 1460, raw_options: '" + "01 " * 40 + "'}\n"
                     "  - silence: 1s\n")
    error = load_error(tmp_path, text)
    assert error.field == "steps[0].send.raw_options" and "at most 40 octets" in error.message


def test_isn_compares_a_new_isn_with_the_old(tmp_path):
    """isn: '>= rcv_nxt' is an operator and an expression, only beside a SYN."""
    (case,) = load(tmp_path, case_text("""\
        - send:   {flags: SYN, seq: 0}
        - expect: {flags: SYN+ACK, isn: ">= rcv_nxt + 1"}
        """))
    operator, expression = case.steps[1].isn
    assert operator == ">=" and expression.evaluate({"rcv_nxt": 2}) == 3


def test_isn_beside_a_segment_without_syn(tmp_path):
    """isn on an ACK is an error at the field: there is no new ISN to compare."""
    text = case_text("""\
        - send:   {flags: SYN, seq: 0}
        - expect: {flags: ACK, isn: ">= rcv_nxt"}
        """)
    error = load_error(tmp_path, text)
    assert error.field == "steps[1].expect.isn"
    assert "only beside flags with SYN" in error.message


MIDDLEBOX = """\
id: t.tracker
title: t
requirements: [RFC5382-REQ-5-established]
target: {role: client, start: ESTABLISHED, middlebox: nat}
steps:
  - firewall: {tracks: STATE, idle_timeout_at_least: TIME}
"""


def test_a_trackers_idle_timeout_reads_minutes_and_hours(tmp_path):
    for text, seconds in (("124min", 7440), ("2h", 7200), ("240s", 240), ("86400", 86400)):
        step = load(tmp_path, MIDDLEBOX.replace("STATE", "ESTABLISHED").replace("TIME", text))[0].steps[0]
        assert step.idle_timeout_at_least == seconds
    assert "idle for at least 7440 s before it forgets it" in load(
        tmp_path, MIDDLEBOX.replace("STATE", "ESTABLISHED").replace("TIME", "124min"))[0].steps[0].describe()


def test_no_connection_has_no_timeout(tmp_path):
    error = load_error(tmp_path, MIDDLEBOX.replace("STATE", "none").replace("TIME", "4min"))
    assert error.line == 6 and "a timeout of no connection" in error.message


def test_an_icmp_error_step_names_its_kind(tmp_path):
    text = MIDDLEBOX.replace("  - firewall: {tracks: STATE, idle_timeout_at_least: TIME}",
                             "  - icmp: KIND\n  - firewall: translates")
    step = load(tmp_path, text.replace("KIND", "admin-prohibited"))[0].steps[0]
    assert step.describe() == ("ICMP destination unreachable, administratively prohibited, "
                               "quoting the target's last segment")
    error = load_error(tmp_path, text.replace("KIND", "fragmentation-needed"))
    assert error.line == 6 and "admin-prohibited or port-unreachable" in error.message


TWO_CLIENT_CONNECTIONS = """\
id: t.mapping
title: t
requirements: [RFC5382-REQ-1]
target: {role: client, start: ESTABLISHED, middlebox: nat}
steps:
  - FIRST
    conn: b
  - expect: {flags: SYN}
    conn: b
  - firewall: {same_mapping_as: OTHER}
    conn: b
"""


def test_a_client_opens_a_further_connection_with_its_application(tmp_path):
    case = load(tmp_path, TWO_CLIENT_CONNECTIONS.replace("FIRST", "app: connect")
                .replace("OTHER", "a"))[0]
    assert case.connections == ("a", "b") and case.steps[2].same_mapping_as == "a"
    error = load_error(tmp_path, TWO_CLIENT_CONNECTIONS.replace(
        "FIRST", "send: {flags: SYN, seq: 0}").replace("OTHER", "a"))
    assert error.field == "target.role" and "its first step: app: connect" in error.message
    error = load_error(tmp_path, TWO_CLIENT_CONNECTIONS.replace("FIRST", "app: connect")
                       .replace("OTHER", "c"))
    assert error.line == 10 and "expected another of the case's connections (a); got 'c'" \
        in error.message
