"""The requirements catalogue: the package's file loads and agrees with every
case's citations, and a bad catalogue file is one CatalogueError naming the
file, line and field (conformance.requirements)."""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache
from pathlib import Path

import pytest

from conformance.case import CaseError, Requirement, load_case_file
from conformance.requirements import (
    APPENDIX_B_ID,
    DEFAULT_PATH,
    Catalogue,
    CatalogueEntry,
    CatalogueError,
    load_catalogue,
)

REPO = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((REPO / "cases").rglob("*.yaml"))

# RFC 9293 Appendix B: MUST-1..69, SHLD-1..31, MAY-1..18 and one REC.
APPENDIX_B_COUNTS = {"MUST": 69, "SHLD": 31, "MAY": 18, "REC": 1}


@lru_cache(maxsize=None)
def citations() -> tuple:
    """(case file, case id, Requirement) for every requirement every case cites,
    the grid's cells included."""
    return tuple((path.relative_to(REPO), case.id, req)
                 for path in CASE_FILES
                 for case in load_case_file(path)
                 for req in case.requirements)


# --- the package's catalogue ---------------------------------------------------

def test_package_catalogue_loads_and_is_cached():
    """load_catalogue() reads requirements.yaml once and hands out the same catalogue."""
    catalogue = load_catalogue()
    assert catalogue.path == DEFAULT_PATH
    assert len(catalogue) > 0
    assert load_catalogue() is catalogue


def test_ids_are_unique():
    """No id appears twice in the package's catalogue."""
    ids = [entry.id for entry in load_catalogue()]
    twice = sorted({req_id for req_id in ids if ids.count(req_id) > 1})
    assert not twice, f"ids given more than once: {', '.join(twice)}"


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


def test_every_cited_requirement_is_catalogued_alike():
    """Each requirement a case cites is in the catalogue with the same rfc, section
    and level."""
    catalogue = load_catalogue()
    problems, seen = [], {}
    for path, case_id, req in citations():
        entry = catalogue.get(req.id)
        if entry is None:
            problem = "is not in the catalogue"
        else:
            differs = [f"{name} {getattr(req, name)!r} here, {getattr(entry, name)!r} in "
                       f"{DEFAULT_PATH.name}:{entry.line}"
                       for name in ("rfc", "section", "level")
                       if getattr(req, name) != getattr(entry, name)]
            if not differs:
                continue
            problem = "; ".join(differs)
        # The grid's cells repeat their rule's requirement: report each one once.
        key = (path, req.id, problem)
        if key in seen:
            seen[key][1] += 1
            continue
        seen[key] = [case_id, 0]
        problems.append(key)
    assert not problems, "cases that do not cite requirements as the catalogue has them:\n" + \
        "\n".join(f"  {path}: case {seen[key][0]}"
                  + (f" (and {seen[key][1]} more)" if seen[key][1] else "")
                  + f": {req_id} {problem}"
                  for key in problems for path, req_id, problem in [key])


def test_in_scope_is_a_superset_of_the_cited():
    """Every cited requirement is in scope, and some in-scope requirement is cited by
    no case: the index has something to show as uncovered."""
    cited = {req.id for _, _, req in citations()}
    in_scope = {entry.id for entry in load_catalogue().in_scope()}
    assert cited <= in_scope, f"cited but not in scope: {', '.join(sorted(cited - in_scope))}"
    assert in_scope > cited


def test_citation_matches_the_case_language():
    """An entry cites itself as case.Requirement does."""
    entry = load_catalogue().get("RFC9293-MUST-13")
    requirement = Requirement(entry.id, entry.rfc, entry.section, entry.level, entry.text)
    assert entry.citation == requirement.citation == "RFC 9293 section 3.6.1"


# --- the API -------------------------------------------------------------------

def _entry(req_id: str, scope: str = "wire", why: str = "") -> CatalogueEntry:
    return CatalogueEntry(req_id, 9293, "3.1", "MUST", "a rule", scope, why)


def test_catalogue_lookup_iteration_and_scope():
    """get, in, iteration in order, len and in_scope."""
    first, second = _entry("RFC9293-MUST-1"), _entry("RFC9293-MUST-2", "out", "ICMP")
    catalogue = Catalogue([first, second])
    assert catalogue.get("RFC9293-MUST-2") is second
    assert catalogue.get("RFC9293-MUST-3") is None
    assert "RFC9293-MUST-1" in catalogue and "RFC9293-MUST-3" not in catalogue
    assert list(catalogue) == [first, second] and len(catalogue) == 2
    assert catalogue.in_scope() == [first]


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
    level: MUST
    text: TIME-WAIT lasts 2 MSL.
    scope: wire
  - id: RFC9293-MUST-54
    rfc: 9293
    section: "3.9.2.2"
    level: MUST
    text: ICMP errors are acted on.
    scope: out
    why: the lab injects TCP only
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "requirements.yaml"
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
    """Entries come out in file order, text unfolded, with their lines."""
    catalogue = load_catalogue(write(tmp_path, GOOD))
    assert [e.id for e in catalogue] == ["RFC9293-MUST-13", "RFC9293-MUST-54"]
    out = catalogue.get("RFC9293-MUST-54")
    assert (out.scope, out.why, out.in_scope) == ("out", "the lab injects TCP only", False)
    assert out.line == line_of(GOOD, "id: RFC9293-MUST-54")


def test_bad_level(tmp_path):
    """A level outside MUST, SHOULD and MAY names the level's line and field."""
    text = GOOD.replace("level: MUST\n    text: TIME", "level: MUST NOT\n    text: TIME")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "level: MUST NOT")
    assert error.field == "requirements[0].level"
    assert "MUST, SHOULD or MAY" in error.message and "'MUST NOT'" in error.message
    assert str(error).startswith(f"{error.path}:{error.line}: requirements[0].level: ")


def test_missing_field(tmp_path):
    """An entry without a section is reported at the entry, naming the field."""
    text = GOOD.replace('    section: "3.9.2.2"\n', "")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "id: RFC9293-MUST-54")
    assert error.field == "requirements[1]"
    assert "'section' is missing" in error.message


def test_unknown_field(tmp_path):
    """A misspelt field is an unknown field, with the known ones listed."""
    text = GOOD.replace("    scope: wire\n", "    scope: wire\n    covered: yes\n")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "covered: yes")
    assert "unknown field 'covered'" in error.message and "scope" in error.message


def test_duplicate_id(tmp_path):
    """An id given twice names both lines."""
    text = GOOD.replace("id: RFC9293-MUST-54", "id: RFC9293-MUST-13")
    error = load_error(tmp_path, text)
    first, second = line_of(text, "id: RFC9293-MUST-13"), line_of(text, "id: RFC9293-MUST-13", 2)
    assert error.line == second and error.field == "requirements[1].id"
    assert f"line {first}" in error.message and f"line {second}" in error.message


def test_out_without_why(tmp_path):
    """scope: out without a why is reported at the scope line, naming why."""
    text = GOOD.replace("    why: the lab injects TCP only\n", "")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "scope: out")
    assert error.field == "requirements[1].why"
    assert "why" in error.message


def test_why_without_out(tmp_path):
    """A why on a wire entry is an error at the why."""
    text = GOOD.replace("    scope: out\n", "    scope: wire\n")
    error = load_error(tmp_path, text)
    assert error.line == line_of(text, "why: the lab")
    assert error.field == "requirements[1].why"


def test_bad_scope(tmp_path):
    """A scope other than wire or out is named with what was expected."""
    text = GOOD.replace("scope: wire", "scope: inside")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0].scope" and "wire" in error.message


def test_appendix_b_label_fixes_the_level(tmp_path):
    """An RFC 9293 SHLD-n entry must say SHOULD."""
    text = GOOD.replace("RFC9293-MUST-13", "RFC9293-SHLD-13")
    error = load_error(tmp_path, text)
    assert error.field == "requirements[0].level" and "SHOULD" in error.message


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


def test_error_messages_have_no_traceback_noise(tmp_path):
    """The message is one line: file, line, field and what was expected."""
    text = GOOD.replace("level: MUST\n    text: TIME", "level: may\n    text: TIME")
    error = load_error(tmp_path, text)
    assert "\n" not in str(error)
    assert re.match(r".+requirements\.yaml:\d+: requirements\[0\]\.level: expected ", str(error))
