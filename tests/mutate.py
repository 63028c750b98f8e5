"""A seeded mutator of case files: the catalogue's own files, damaged the ways
people and tools damage text, for tests/test_bad_input.py.

Each mutation returns bytes (a file may stop being UTF-8).  The same seed
gives the same mutations, so a failure is reproduced by its number.
"""

from __future__ import annotations

import random
import re

# Values that a YAML scalar may be replaced with: other types, extremes, tags.
VALUES = [
    "", "~", "null", "true", "[]", "{}", "[1, [2, [3]]]", "-1", "0", "1.5", ".nan", ".inf",
    "-.inf", "1e309", "9" * 5000, "0x" + "f" * 40, "1" * 30, "'x' ", '"\\u0000"', '"\\x85"',
    "!!binary aGVsbG8=", "!!python/object:os.system {}", "!custom 5", "!!set {a, b}",
    "!!timestamp 2001-12-14", "2001-12-14", "*undefined", "&anchor 5", "'" + "x" * 300 + "'",
    "ESTABLISHED", "SYN+ACK", "+", "|", "-", "snd_nxt +", "1.2.3s", "-5ms", "1e9s", "'\t'",
    "{flags: SYN}", "[send, expect]", "=", "? a", "%TAG",
]

# A "billion laughs" document: nine references to nine references ...
LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["id: *a8"])


def _lines(text: str) -> list[str]:
    return text.split("\n")


def replace_value(rng: random.Random, text: str) -> str:
    """A scalar after a 'key:' replaced with one of VALUES."""
    spots = [m for m in re.finditer(r"(?m)(:\s+)([^\s{\[#][^\n,}\]]*)", text)]
    if not spots:
        return text
    spot = rng.choice(spots)
    return text[:spot.start(2)] + rng.choice(VALUES) + text[spot.end(2):]


def flip_byte(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    junk = rng.choice([b"\x00", b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x1b[31m", b"\x7f",
                       b"\xef\xbb\xbf", b"\r", b"\t", b"\x85", b"\xed\xa0\x80", b"\x0c"])
    i = rng.randrange(len(data) + 1)
    return data[:i] + junk + data[i:]


def drop_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def repeat_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "\n".join(lines)


def reindent(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = rng.choice(["", " ", "  ", "\t", "      "]) + lines[i].lstrip()
    return "\n".join(lines)


def truncate(rng: random.Random, text: str) -> str:
    return text[:rng.randrange(len(text) + 1)]


def nest(rng: random.Random, text: str) -> str:
    depth = rng.choice([50, 200, 2000, 20000])
    return text + "\nx: " + "[" * depth + "]" * depth + "\n"


def laughs(rng: random.Random, text: str) -> str:
    return LAUGHS + "\n" + text if rng.random() < 0.5 else LAUGHS


def self_alias(rng: random.Random, text: str) -> str:
    return "a: &a [*a]\n" + text


def duplicate_document(rng: random.Random, text: str) -> str:
    return text + "\n---\n" + text


TEXT_MUTATIONS = [replace_value] * 6 + [drop_line, repeat_line, reindent, truncate, nest,
                                        laughs, self_alias, duplicate_document]
BYTE_MUTATIONS = [flip_byte, insert_bytes]


def mutations(files: list[tuple[str, str]], count: int, seed: int = 9293):
    """`count` (number, name, bytes) mutants of the (name, text) files."""
    rng = random.Random(seed)
    for number in range(count):
        name, text = rng.choice(files)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if rng.random() < 0.2:
                data = rng.choice(BYTE_MUTATIONS)(rng, text.encode("utf-8", "surrogateescape"))
                text = data.decode("utf-8", "surrogateescape")
            else:
                text = rng.choice(TEXT_MUTATIONS)(rng, text)
        yield number, name, text.encode("utf-8", "surrogateescape")
