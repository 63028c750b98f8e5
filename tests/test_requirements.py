"""The requirements catalogue: one place for each requirement's sentence, its
keyword and the level a deviation is reported at (conformance.requirements).

The package's file loads, agrees with RFC 9293's own numbering, and is cited by
id everywhere; a bad catalogue, an unknown or repeated id in a case, a grid or
a baseline, and a level that disagrees with its sentence are each refused with
the file, the line and what was expected."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from conformance.baseline import BaselineError, load_baseline
from conformance.case import CaseError
from conformance.casefile import load_case_file
from conformance.requirements import (
    APPENDIX_B_ID,
    DEFAULT_PATH,
    KEYWORD_LEVELS,
    Catalogue,
    CatalogueError,
    Requirement,
    derive_level,
    load_catalogue,
)
from conformance.requirements_doc import citing_cases, render

REPO = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((REPO / "cases").rglob("*.yaml"))

# RFC 9293 Appendix B: MUST-1..69, SHLD-1..31, MAY-1..18 and one REC.
APPENDIX_B_COUNTS = {"MUST": 69, "SHLD": 31, "MAY": 18, "REC": 1}


# --- the package's catalogue ---------------------------------------------------

def test_package_catalogue_loads_and_is_cached():
    """load_catalogue() reads requirements.yaml once and hands out the same catalogue."""
    catalogue = load_catalogue()
    assert catalogue.path == DEFAULT_PATH
    assert len(catalogue) > 0
    assert load_catalogue() is catalogue


def test_appendix_b_numbering_is_contiguous():
    """Every RFC 9293 label is there, MUST-1..MUST-69 and so on, and no other."""
    numbers: dict[str, set] = {label: set() for label in APPENDIX_B_COUNTS}
    for entry in load_catalogue():
        match = APPENDIX_B_ID.match(entry.id)
        if match:
            numbers[match.group(1)].add(int(match.group(2)))
    for label, count in APPENDIX_B_COUNTS.items():
        missing = sorted(set(range(1, count + 1)) - numbers[label])
        extra = sorted(numbers[label] - set(range(1, count + 1)))
        assert not missing and not extra, (
            f"RFC 9293 {label}-n: missing {missing}, beyond {label}-{count}: {extra}")


def test_entries_point_at_their_lines():
    """An entry's line is the line of its id in the file."""
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    for entry in load_catalogue():
        assert f"id: {entry.id}" in lines[entry.line - 1], entry.id


def test_out_of_scope_entries_say_why():
    """Every out entry has a why; every wire entry has none."""
    for entry in load_catalogue():
        assert bool(entry.why) == (not entry.in_scope), entry.id


def test_every_case_cites_catalogued_requirements_in_scope():
    """Every case file loads (each id it cites is in the catalogue), and every
    requirement cited is checkable from the wire."""
    catalogue = load_catalogue()
    cited = {req.id for path in CASE_FILES for case in load_case_file(path)
             for req in case.requirements}
    assert cited <= {entry.id for entry in catalogue.in_scope()}


def test_one_rule_one_id():
    """No two entries quote the same words: one rule has one id.  A sentence
    that carries two of RFC 9293's labels ("The sender MUST generate it (MUST-2)
    and the receiver MUST check it (MUST-3).") states two rules."""
    seen: dict[tuple, str] = {}
    for entry in load_catalogue():
        label = entry.id.split("-", 1)[1] if APPENDIX_B_ID.match(entry.id) else ""
        key = (entry.rfc, entry.quote, label)
        assert key not in seen, f"{entry.id} quotes the same sentence as {seen[key]}"
        seen[key] = entry.id


def test_no_must_without_a_capital_keyword():
    """The project's rule: no keyword, no MUST.  And every conditional entry is at
    most as strong as its condition."""
    catalogue = load_catalogue()
    for entry in catalogue:
        if entry.level == "MUST":
            assert entry.keyword in ("MUST", "MUST NOT", "SHALL", "SHALL NOT", "REQUIRED"), entry.id
            assert not entry.applies_if or catalogue.get(entry.applies_if).level == "MUST"
        if entry.applies_if:
            condition = catalogue.get(entry.applies_if)
            assert ("MUST", "SHOULD", "MAY").index(entry.level) >= \
                ("MUST", "SHOULD", "MAY").index(condition.level), entry.id


def test_rfc5961_musts_are_reported_at_the_adoption_level():
    """RFC 5961's challenge ACK is a MUST for a stack that adopted RFC 5961 section
    3.2, and the adoption is a SHOULD: a deviation warns, and says why."""
    entry = load_catalogue().get("RFC5961-3.2-challenge-ack")
    assert (entry.keyword, entry.applies_if, entry.level) == \
        ("MUST", "RFC5961-3.2-rst-mitigation", "SHOULD")
    assert entry.basis == ("MUST for a stack that adopts RFC5961-3.2-rst-mitigation, itself "
                           "SHOULD: a deviation is a SHOULD")


def test_an_informational_rfc_informs():
    """RFC 1337 is Informational: its fix F1 has no keyword, and a deviation from
    it is a MAY whatever its words (RFC 2026 4.2.2)."""
    entry = load_catalogue().get("RFC1337-3-F1")
    assert (entry.keyword, entry.level) == ("none", "MAY")
    assert entry.basis == "RFC 1337 is Informational: a deviation is a MAY"
    assert derive_level("SHOULD", rfc=4987) == "MAY"
    assert derive_level("SHOULD", rfc=9293) == "SHOULD"


def test_rfc6092_musts_inform():
    """RFC 6092 (simple security in IPv6 CPE) is Informational and says it uses the
    keywords "only for precision": its MUST for a firewall informs, while RFC 5382's
    MUST for a NAT (a BCP) fails."""
    catalogue = load_catalogue()
    rec = catalogue.get("RFC6092-REC-31")
    assert (rec.keyword, rec.level) == ("MUST", "MAY")
    assert rec.basis == "RFC 6092 is Informational: a deviation is a MAY"
    req = catalogue.get("RFC5382-REQ-2")
    assert (req.keyword, req.level) == ("MUST", "MUST")


def test_the_documentation_table_is_current():
    """docs/requirements.md is what `python -m conformance.requirements_doc` writes."""
    page = (REPO / "docs" / "requirements.md").read_text(encoding="utf-8")
    assert page == render(load_catalogue(), citing_cases()), (
        "docs/requirements.md is out of date: python -m conformance.requirements_doc "
        "> docs/requirements.md")


# --- levels ----------------------------------------------------------------------

@pytest.mark.parametrize("keyword,condition,level", [
    ("MUST", "", "MUST"), ("MUST NOT", "", "MUST"), ("REQUIRED", "", "MUST"),
    ("SHOULD", "", "SHOULD"), ("RECOMMENDED", "", "SHOULD"), ("MAY", "", "MAY"),
    ("must", "", "SHOULD"), ("should", "", "SHOULD"), ("none", "", "SHOULD"),
    ("may", "", "MAY"),
    ("MUST", "SHOULD", "SHOULD"), ("MUST", "MAY", "MAY"), ("SHOULD", "MAY", "MAY"),
    ("MAY", "MUST", "MAY"),
])
def test_level_follows_the_keyword(keyword, condition, level):
    """The table of the module's docstring, and the weaker of keyword and condition."""
    assert derive_level(keyword, condition) == level
    assert keyword in KEYWORD_LEVELS


def test_basis_says_why():
    """A level below the keyword's own force says why, in words."""
    plain = Requirement("RFC9293-3.10.7.4-x", 9293, "3.10.7.4", "drop it", "none", "SHOULD",
                        "drops it")
    assert plain.basis == ("no BCP 14 keyword (processing the RFC describes): a deviation "
                           "is a SHOULD")
    lower = Requirement("RFC9293-3.10.7.2-x", 9293, "3.10.7.2", "it should", "should",
                        "SHOULD", "s")
    assert lower.basis.startswith('lowercase "should", not a BCP 14 keyword')
    must = Requirement("RFC9293-MUST-13", 9293, "3.6.1", "MUST (MUST-13)", "MUST", "MUST", "s")
    assert must.basis == "MUST"


# --- the API -------------------------------------------------------------------

def _entry(req_id: str, scope: str = "wire", why: str = "") -> Requirement:
    return Requirement(req_id, 9293, "3.1", "a rule (MUST-1)", "MUST", "MUST", "a rule",
                       scope, why)


def test_catalogue_lookup_iteration_scope_and_nearest():
    """get, in, iteration in order, len, in_scope, and the nearest ids of a typo."""
    first, second = _entry("RFC9293-MUST-1"), _entry("RFC9293-MUST-2", "out", "ICMP")
    catalogue = Catalogue([first, second])
    assert catalogue.get("RFC9293-MUST-2") is second
    assert catalogue.get("RFC9293-MUST-3") is None
    assert "RFC9293-MUST-1" in catalogue and "RFC9293-MUST-3" not in catalogue
    assert list(catalogue) == [first, second] and len(catalogue) == 2
    assert catalogue.in_scope() == [first]
    assert catalogue.nearest("RFC9293-MUST-11")[0] in ("RFC9293-MUST-1", "RFC9293-MUST-2")


def test_catalogue_refuses_a_repeated_id():
    """Building a catalogue by hand with one id twice is refused."""
    with pytest.raises(ValueError, match="RFC9293-MUST-1"):
        Catalogue([_entry("RFC9293-MUST-1"), _entry("RFC9293-MUST-1")])


# --- bad catalogue files ---------------------------------------------------------

GOOD = """\
# a catalogue written by a test
requirements:
  - id: RFC9293-MUST-13
    rfc: 9293
    section: "3.6.1"
    quote: >-
      When a connection is closed actively, it MUST linger in the TIME-WAIT state for a
      time 2xMSL (Maximum Segment Lifetime) (MUST-13).
    keyword: MUST
    level: MUST
    summary: TIME-WAIT lasts 2 MSL.
    scope: wire
  - id: RFC9293-3.10.7.4-ack-off
    rfc: 9293
    section: "3.10.7.4"
    quote: if the ACK bit is off, drop the segment and return
    keyword: none
    level: SHOULD
    summary: A segment without ACK is dropped.
    scope: wire
  - id: RFC5961-3.2-rst-mitigation
    rfc: 5961
    section: "3.2"
    quote: implementations SHOULD implement the following steps
    keyword: SHOULD
    level: SHOULD
    summary: RFC 5961's RST checks are adopted.
    scope: wire
  - id: RFC5961-3.2-challenge-ack
    rfc: 5961
    section: "3.2"
    quote: TCP MUST send an acknowledgment (challenge ACK)
    keyword: MUST
    applies_if: RFC5961-3.2-rst-mitigation
    level: SHOULD
    summary: An in-window RST not at RCV.NXT draws a challenge ACK.
    scope: wire
  - id: RFC9293-MUST-54
    rfc: 9293
    section: "3.9.2.2"
    quote: A TCP implementation MUST act on an ICMP error message (MUST-54).
    keyword: MUST
    level: MUST
    summary: ICMP errors are acted on.
    scope: out
    why: the lab injects TCP only
"""


def write(tmp_path, text: str, name: str = "requirements.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, marker: str, nth: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    return hits[nth - 1]


def load_error(tmp_path, text: str) -> CatalogueError:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(write(tmp_path, text))
    return info.value


def test_a_good_file_loads(tmp_path):
    """Entries come out in file order, quotes unfolded, levels and conditions resolved."""
    catalogue = load_catalogue(write(tmp_path, GOOD))
    assert [e.id for e in catalogue][:2] == ["RFC9293-MUST-13", "RFC9293-3.10.7.4-ack-off"]
    must = catalogue.get("RFC9293-MUST-13")
    assert must.quote.startswith("When a connection is closed actively, it MUST linger")
    assert must.text == must.quote and "\n" not in must.quote
    challenge = catalogue.get("RFC5961-3.2-challenge-ack")
    assert (challenge.level, challenge.condition_level) == ("SHOULD", "SHOULD")
    out = catalogue.get("RFC9293-MUST-54")
    assert (out.scope, out.why, out.in_scope) == ("out", "the lab injects TCP only", False)
    assert out.line == line_of(GOOD, "id: RFC9293-MUST-54")


def test_a_level_stronger_than_the_sentence_is_refused(tmp_path):
    """A MUST written for a sentence without a keyword: refused at the level's line,
    saying which level the keyword gives."""
    text = GOOD.replace("keyword: none\n    level: SHOULD", "keyword: none\n    level: MUST")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "level: MUST", 2)
    assert error.field == "requirements[1].level"
    assert error.message == "expected SHOULD: the quote's keyword is 'none'; got 'MUST'"
    assert str(error).startswith(f"{error.path}:{error.line}: requirements[1].level: ")


def test_a_condition_weakens_the_level(tmp_path):
    """A MUST that applies if a SHOULD was adopted must be written SHOULD."""
    text = GOOD.replace("applies_if: RFC5961-3.2-rst-mitigation\n    level: SHOULD",
                        "applies_if: RFC5961-3.2-rst-mitigation\n    level: MUST")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[3].level"
    assert "expected SHOULD" in error.message
    assert "applies if RFC5961-3.2-rst-mitigation (SHOULD) is adopted" in error.message


def test_a_keyword_the_quote_does_not_carry_is_refused(tmp_path):
    """keyword: SHOULD for a sentence that says MUST is an error at the keyword."""
    text = GOOD.replace("keyword: MUST\n    applies_if", "keyword: SHOULD\n    applies_if")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[3].keyword"
    assert "the quote has no 'SHOULD'" in error.message


def test_keyword_none_for_a_sentence_with_a_keyword_is_refused(tmp_path):
    """keyword: none, and the quote says MUST: the keyword is named."""
    text = GOOD.replace("quote: if the ACK bit is off, drop the segment and return",
                        "quote: if the ACK bit is off, TCP MUST drop the segment")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[1].keyword" and "(MUST)" in error.message


def test_lowercase_is_not_a_capital_keyword(tmp_path):
    """A lowercase "should" is its own keyword: writing SHOULD for it is refused."""
    text = GOOD.replace("quote: if the ACK bit is off, drop the segment and return\n"
                        "    keyword: none",
                        "quote: an acknowledgment should be sent in reply\n    keyword: SHOULD")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[1].keyword" and "no 'SHOULD'" in error.message


def test_appendix_b_label_fixes_the_keyword(tmp_path):
    """An RFC 9293 SHLD-n entry must carry SHOULD, and quote the labelled sentence."""
    text = GOOD.replace("RFC9293-MUST-13", "RFC9293-SHLD-13")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0].keyword" and "SHOULD" in error.message
    text = GOOD.replace("(MUST-13).", ".")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0].quote" and "(MUST-13)" in error.message


def test_an_unknown_condition_names_the_nearest(tmp_path):
    """applies_if must name an entry; a typo is answered with the nearest ids."""
    text = GOOD.replace("applies_if: RFC5961-3.2-rst-mitigation",
                        "applies_if: RFC5961-3.2-rst-mitigations")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "applies_if:")
    assert error.field == "requirements[3].applies_if"
    assert "the nearest: RFC5961-3.2-rst-mitigation" in error.message


def test_a_condition_that_goes_round_is_refused(tmp_path):
    """A chain of applies_if must end."""
    text = GOOD.replace("    keyword: SHOULD\n    level: SHOULD\n    summary: RFC 5961's",
                        "    keyword: SHOULD\n    applies_if: RFC5961-3.2-challenge-ack\n"
                        "    level: SHOULD\n    summary: RFC 5961's")
    error = load_error(tmp_path, text)
    assert "goes round" in error.message


def test_missing_field(tmp_path):
    """An entry without a quote is reported at the entry, naming the field."""
    text = GOOD.replace("    quote: A TCP implementation MUST act on an ICMP error message "
                        "(MUST-54).\n", "")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "id: RFC9293-MUST-54")
    assert error.field == "requirements[4]"
    assert "'quote' is missing" in error.message


def test_unknown_field(tmp_path):
    """A misspelt field (the old text:) is an unknown field, with the known ones listed."""
    text = GOOD.replace("    summary: TIME-WAIT lasts 2 MSL.\n",
                        "    summary: TIME-WAIT lasts 2 MSL.\n    text: old\n")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "text: old")
    assert "unknown field 'text'" in error.message and "quote" in error.message


def test_duplicate_id(tmp_path):
    """An id given twice names both lines."""
    text = GOOD.replace("id: RFC9293-MUST-54", "id: RFC9293-MUST-13")
    error = load_error(tmp_path, text)
    first, second = line_of(text, "id: RFC9293-MUST-13"), line_of(text, "id: RFC9293-MUST-13", 2)
    assert error.line == second and error.field == "requirements[4].id"
    assert f"line {first}" in error.message and f"line {second}" in error.message


def test_out_without_why_and_why_without_out(tmp_path):
    """scope: out needs a why (reported at the scope line); wire has none."""
    text = GOOD.replace("    why: the lab injects TCP only\n", "")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "scope: out") and error.field == "requirements[4].why"
    text = GOOD.replace("    scope: out\n", "    scope: wire\n")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "why: the lab") and error.field == "requirements[4].why"


def test_id_names_its_rfc(tmp_path):
    """An id starts with RFC<rfc>-, so that an id says which RFC it cites."""
    text = GOOD.replace('rfc: 9293\n    section: "3.6.1"', 'rfc: 5961\n    section: "3.6.1"')
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0].id" and "RFC5961-" in error.message


@pytest.mark.parametrize("text,words", [
    ("requirements:\n  - id: [\n", "not valid YAML"),
    ("requirements:\n  - {id: A, id: B}\n", "given twice"),
    ("", "expected one YAML document"),
    ("requirements: []\n", "got []"),
    ("- id: RFC9293-MUST-1\n", "a mapping with one field, requirements"),
])
def test_broken_files_are_catalogue_errors(tmp_path, text, words):
    """Broken YAML, an empty file or the wrong shape: a CatalogueError, never a traceback."""
    error = load_error(tmp_path, text)
    assert words in error.message
    assert isinstance(error, CaseError)


def test_missing_file(tmp_path):
    """A file that cannot be read is a CatalogueError naming it."""
    with pytest.raises(CatalogueError, match="cannot be read") as info:
        load_catalogue(tmp_path / "nowhere.yaml")
    assert info.value.path.endswith("nowhere.yaml")


# --- citations: cases, the grid, baselines -------------------------------------------

CASE = """\
id: t.cites
title: cites requirements
requirements: [RFC9293-MUST-13, {second}]
target: {{role: listener, start: ESTABLISHED}}
steps:
  - send: {{flags: RST, seq: snd_nxt + 100}}
  - one_of:
      - label: challenge ACK
        requirement: {alternative}
        steps:
          - expect: {{flags: ACK}}
      - label: reset
        requirement: RFC9293-MUST-13
        conforms: false
        steps:
          - silence: 100ms
"""


def case_error(tmp_path, second="RFC5961-3.2-challenge-ack",
               alternative="RFC5961-3.2-challenge-ack") -> CaseError:
    text = CASE.format(second=second, alternative=alternative)
    with pytest.raises(CaseError) as info:
        load_case_file(write(tmp_path, text, "case.yaml"))
    return info.value


def test_a_case_cites_ids_and_gets_the_catalogue_text(tmp_path):
    """A case lists ids; its requirements are the catalogue's entries, and each
    alternative carries the id of the sentence that allows (or forbids) it."""
    (case,) = load_case_file(write(tmp_path, CASE.format(
        second="RFC5961-3.2-challenge-ack", alternative="RFC5961-3.2-challenge-ack"), "c.yaml"))
    catalogue = load_catalogue()
    assert case.requirements == [catalogue.get("RFC9293-MUST-13"),
                                 catalogue.get("RFC5961-3.2-challenge-ack")]
    challenge, reset = case.steps[1].alternatives
    assert (challenge.requirement, reset.requirement) == \
        ("RFC5961-3.2-challenge-ack", "RFC9293-MUST-13")


def test_an_unknown_id_in_a_case_names_file_line_and_the_nearest(tmp_path):
    """A typo in a case's requirement list is an error at its line, with the nearest ids."""
    error = case_error(tmp_path, second="RFC5961-3.2-challenge-acks")
    assert (error.line, error.field) == (3, "requirements[1]")
    assert "got 'RFC5961-3.2-challenge-acks'" in error.message
    assert "the nearest: RFC5961-3.2-challenge-ack" in error.message
    assert error.path.endswith("case.yaml")


def test_an_id_twice_in_a_case_is_refused(tmp_path):
    """The same id twice in a case's list is an error at the list."""
    error = case_error(tmp_path, second="RFC9293-MUST-13", alternative="RFC9293-MUST-13")
    assert (error.line, error.field) == (3, "requirements")


def test_an_old_inline_requirement_block_is_refused(tmp_path):
    """The old form (rfc, section, level, text inline) says that ids are expected."""
    text = CASE.format(second="RFC5961-3.2-challenge-ack",
                       alternative="RFC5961-3.2-challenge-ack").replace(
        "requirements: [RFC9293-MUST-13, RFC5961-3.2-challenge-ack]",
        "requirements:\n  - {id: X-1, rfc: 9293, section: '3.5', level: MUST, text: t}")
    with pytest.raises(CaseError) as info:
        load_case_file(write(tmp_path, text, "case.yaml"))
    assert info.value.line == 4 and "requirement id" in info.value.message


def test_an_alternative_cites_one_of_the_case_requirements(tmp_path):
    """An alternative's requirement must be one the case lists; one without is refused."""
    error = case_error(tmp_path, alternative="RFC9293-MUST-11")
    assert error.field == "steps[1].one_of[0].requirement" and error.line == 9
    text = CASE.format(second="RFC5961-3.2-challenge-ack",
                       alternative="RFC5961-3.2-challenge-ack").replace(
        "        requirement: RFC5961-3.2-challenge-ack\n", "")
    with pytest.raises(CaseError) as info:
        load_case_file(write(tmp_path, text, "case.yaml"))
    assert "'requirement' is missing" in info.value.message and info.value.line == 8


GRID = (REPO / "cases" / "grid" / "state-event.yaml").read_text(encoding="utf-8")


def test_an_unknown_id_in_the_grid_names_the_rule_line(tmp_path):
    """A grid rule citing an id the catalogue lacks is refused at that line."""
    first = re.search(r"requirement: (RFC\S+)", GRID).group(1)
    text = GRID.replace(f"requirement: {first}", "requirement: RFC9293-MUST-999", 1)
    with pytest.raises(CaseError) as info:
        load_case_file(write(tmp_path, text, "grid.yaml"))
    assert info.value.line == line_of(text, "requirement: RFC9293-MUST-999")
    assert "RFC9293-MUST-999" in info.value.message


def test_a_baseline_cites_a_catalogue_id(tmp_path):
    """A deviation's requirement must be a catalogue id, reported at its line."""
    path = write(tmp_path, """\
        target: linux
        deviations:
          - requirement: RFC9293-MUST-13x
            reason: Linux ends TIME-WAIT after 60 s.
            cases: [time-wait.duration]
        """, "linux.yaml")
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"{path}:3: deviations[0].requirement: ")
    assert "the nearest: RFC9293-MUST-13" in str(info.value)
