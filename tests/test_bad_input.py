"""Bad case files, all of them: every one is a CaseError naming file, line and
field, quickly, whatever the bytes (conformance.source, case.py).  Then a
seeded mutator (tests/mutate.py) damages the catalogue's own files a few
thousand ways and checks the same."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conformance.case import CaseError
from conformance.casefile import load_case_file
from conformance.source import MAX_DEPTH, MAX_VALUES
from tests.mutate import LAUGHS, mutations

REPO = Path(__file__).resolve().parents[1]
GOOD = """\
id: t.good
title: a good case
requirements: [RFC9293-MUST-13]
target: {role: listener, start: LISTEN}
steps:
  - send: {flags: SYN, seq: 0, win: 1000}
  - expect: {flags: SYN+ACK, ack: 1}
"""


def error_of(tmp_path: Path, data: bytes) -> CaseError:
    path = tmp_path / "case.yaml"
    path.write_bytes(data)
    with pytest.raises(CaseError) as info:
        load_case_file(path)
    assert info.value.path == str(path)
    return info.value


def test_the_good_case_loads(tmp_path):
    path = tmp_path / "case.yaml"
    path.write_text(GOOD)
    assert load_case_file(path)[0].steps[0].win == 1000


@pytest.mark.parametrize("data, line, words", [
    (GOOD.encode().replace(b"a good", b"a \xff good"), 2, "not UTF-8 text: byte 0xff"),
    (GOOD.encode().replace(b"a good", b"a \xc3( good"), 2, "not UTF-8 text: byte 0xc3"),
    (GOOD.encode().replace(b"a good", b"a \x00 good"), 2, "a control character U+0000"),
    (GOOD.encode().replace(b"a good", b"a \x1b[31m good"), 2, "a control character U+001B"),
    (GOOD.encode().replace(b"a good", "a \u009b good".encode()), 2, "a control character U+009B"),
])
def test_bytes_that_are_not_text_are_named_by_line(tmp_path, data, line, words):
    error = error_of(tmp_path, data)
    assert (error.line, error.message.startswith(words)) == (line, True), error


def test_a_byte_order_mark_is_text(tmp_path):
    path = tmp_path / "case.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_case_file(path)[0].id == "t.good"


def test_a_billion_laughs_is_refused_at_once(tmp_path):
    """Nine aliases of nine aliases ...: 1.6 kB that would build 400 million values."""
    started = time.monotonic()
    error = error_of(tmp_path, (LAUGHS + "\n").encode())
    assert f"more than {MAX_VALUES:,} values" in error.message
    assert time.monotonic() - started < 2


def test_an_alias_inside_itself_is_refused(tmp_path):
    error = error_of(tmp_path, ("a: &a [*a]\n" + GOOD).encode())
    assert f"nested more than {MAX_DEPTH} deep" in error.message and error.line == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused(tmp_path, depth):
    error = error_of(tmp_path, (GOOD + "x: " + "[" * depth + "]" * depth + "\n").encode())
    assert f"nested more than {MAX_DEPTH} deep" in error.message and error.line == 8


@pytest.mark.parametrize("value, field, words", [
    ("9" * 5000, "steps[0].send.win", "cannot be read as a value"),
    ("1000.0", "steps[0].send.win", "expected a window from 0 to 65535; got 1000.0"),
    ("!!python/object:os.system {}", "steps[0].send.win", "a YAML tag (tag:yaml.org,2002:python/o"),
    ("!!python/name:os.system ''", "steps[0].send.win", "not valid YAML"),
    ("!!set {a, b}", "steps[0].send.win", "a YAML tag (tag:yaml.org,2002:set)"),
    ("!!binary aGVsbG8=", "steps[0].send.win", "expected a window"),
    ("2001-12-14", "steps[0].send.win", "expected a window"),
    ("!!timestamp 2001-13-45", "steps[0].send.win", "cannot be read as a value"),
])
def test_values_of_the_wrong_kind_are_named_by_field(tmp_path, value, field, words):
    error = error_of(tmp_path, GOOD.replace("win: 1000", f"win: {value}").encode())
    assert words in error.message and error.line == 6, error
    assert error.field in (field, "steps[0].send", ""), error


def test_an_id_is_at_most_100_characters(tmp_path):
    error = error_of(tmp_path, GOOD.replace("t.good", "x" * 101).encode())
    assert error.field == "id" and "at most 100 characters" in error.message


@pytest.mark.parametrize("mark", ["skip", "xfail", "usefixtures"])
def test_pytest_own_marks_are_not_case_marks(tmp_path, mark):
    """skip or xfail from a case file would turn a verdict into something else."""
    error = error_of(tmp_path, GOOD.replace("steps:", f"marks: [slow, {mark}]\nsteps:").encode())
    assert error.field == "marks[1]" and "not one of pytest's own" in error.message


def test_a_field_given_twice_is_named(tmp_path):
    error = error_of(tmp_path, GOOD.replace("title: a good case", "title: a\ntitle: b").encode())
    assert (error.field, error.line, error.message) == ("title", 3, "this field is given twice")


# --- the mutator ------------------------------------------------------------------------------

MUTANTS = 3000
CHUNKS = 3             # run side by side under xdist


class _TooSlow(BaseException):
    """Not an Exception: nothing in the loader may catch it."""


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_thousands_of_damaged_files_each_give_one_clear_error(tmp_path, chunk):
    """The catalogue's case files (not the grid, whose 360 cells take a second to
    build) damaged 3,000 ways: every one loads or is a CaseError naming the file,
    in a short message, within 5 s; no other exception, no hang."""
    files = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8"))
             for p in sorted((REPO / "cases").rglob("*.yaml")) if p.parent.name != "grid"]
    path = tmp_path / "mutant.yaml"
    problems, outcomes = [], {"loaded": 0, "refused": 0}

    def too_slow(*_):
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, too_slow)
    try:
        for number, name, data in mutations(files, MUTANTS):
            if number % CHUNKS != chunk:
                continue
            path.write_bytes(data)
            signal.setitimer(signal.ITIMER_REAL, 5)
            try:
                load_case_file(path)
                outcomes["loaded"] += 1
            except CaseError as error:
                outcomes["refused"] += 1
                if str(path) not in str(error) or len(str(error)) > 600:
                    problems.append(f"mutant {number} of {name}: {str(error)[:200]}")
            except _TooSlow:
                problems.append(f"mutant {number} of {name}: over 5 s")
            except Exception as exc:  # noqa: BLE001 - each is a finding
                problems.append(f"mutant {number} of {name}: {type(exc).__name__}: {exc}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not problems, "\n".join(problems[:20])
    assert outcomes["refused"] > MUTANTS / CHUNKS / 2 and outcomes["loaded"] > 0, outcomes
