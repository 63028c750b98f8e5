"""The requirements catalogue: every RFC requirement the suite has in view, quoted.

``requirements.yaml`` beside this module is the one place where a
requirement's text lives.  Case files and the grid cite requirement ids only;
the terminal, the report and the baselines take the RFC's sentence, its
keyword and the level of a deviation from here.

An entry quotes the RFC's own sentence and names the keyword that sentence
carries.  The level of a verdict follows from the keyword, never from an
author's choice (:func:`derive_level`):

=========================================  ========  =============================
the sentence says                          level     a deviation
=========================================  ========  =============================
MUST, MUST NOT, SHALL, SHALL NOT, REQUIRED  MUST      fails the run
SHOULD, SHOULD NOT, RECOMMENDED, ...        SHOULD    warns
MAY, OPTIONAL                               MAY       informs
lowercase "must" / "should", or no keyword  SHOULD    warns ("no BCP 14 keyword")
lowercase "may"                             MAY       informs
any sentence of an Informational RFC        MAY       informs (RFC 1337, 4987, 6092)
=========================================  ========  =============================

RFC 8174 gives the keywords their force only in capitals.  A sentence of RFC
9293's event processing that carries none still describes what a TCP does,
and section 3.10 says other implementations "should differ from those in
this section only in detail, not in substance": a deviation in substance is
reported at SHOULD, never at MUST.  A requirement that holds only for a stack
that adopted an optional mechanism (``applies_if``: RFC 5961's MUSTs, which
RFC 5961 itself asks implementations to adopt with a SHOULD) is reported at
the weaker of its own level and the adoption's.

Every problem in the file is one :class:`CatalogueError` naming the file, the
line, the field and what was expected: an unknown field, a level that
disagrees with the keyword, a keyword the quote does not contain, a duplicate
id, a condition naming no entry.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .source import (Marks, Schema, SourceError, cached, check_schema, dotted,
                     load_yaml_documents, validator)

DEFAULT_PATH = Path(__file__).with_name("requirements.yaml")

LEVELS = ("MUST", "SHOULD", "MAY")   # strongest first
SCOPES = ("wire", "out")

# The keyword a sentence carries -> the level of a deviation from it.
KEYWORD_LEVELS = {
    "MUST": "MUST", "MUST NOT": "MUST", "SHALL": "MUST", "SHALL NOT": "MUST",
    "REQUIRED": "MUST",
    "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "RECOMMENDED": "SHOULD",
    "NOT RECOMMENDED": "SHOULD",
    "MAY": "MAY", "OPTIONAL": "MAY",
    # No BCP 14 force (RFC 8174): the behaviour the RFC describes, at SHOULD
    # at most (RFC 9293 section 3.10), a "may" at MAY.
    "must": "SHOULD", "should": "SHOULD", "none": "SHOULD",
    "may": "MAY",
}
BCP14 = tuple(k for k in KEYWORD_LEVELS if k.isupper())

# An Informational RFC states no requirement of the Internet standard (RFC
# 2026 section 4.2.2), whatever its words: a deviation from it informs.  RFC
# 1337 (TIME-WAIT hazards), RFC 4987 (SYN flooding) and RFC 6092 (simple
# security in IPv6 CPE, whose section 1.2 says it "uses the normative keywords
# [...] only for precision") are the catalogue's.
INFORMATIONAL_RFCS = {1337, 4987, 6092}

# RFC 9293 section 2.1 labels every keyword sentence: MUST-n, SHLD-n, MAY-n,
# REC-n (RECOMMENDED); MUST NOT and SHOULD NOT share the MUST and SHLD
# numbering.  Appendix B lists them all.  The label fixes the keyword.
APPENDIX_B_ID = re.compile(r"^RFC9293-(MUST|SHLD|MAY|REC)-([1-9][0-9]*)$")
LABEL_KEYWORDS = {"MUST": ("MUST", "MUST NOT"), "SHLD": ("SHOULD", "SHOULD NOT"),
                  "MAY": ("MAY",), "REC": ("RECOMMENDED",)}
# Appendix B numbers MUST-22, but its sentence in section 3.8.3 ("SYN
# retransmissions MUST be handled in the general way ...") carries no label.
UNLABELLED_IN_TEXT = {"RFC9293-MUST-22"}

ID_PATTERN = "^RFC[0-9]+-[A-Za-z0-9][A-Za-z0-9._-]*$"

# The schema of the file.  Like conformance/case-schema.yaml, a property's
# "description" is what an error message says was expected.
_ENTRY = {
    "type": "object",
    "description": "a requirement: a mapping with id, rfc, section, quote, keyword, level, "
                   "summary and scope",
    "additionalProperties": False,
    "required": ["id", "rfc", "section", "quote", "keyword", "level", "summary", "scope"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN, "maxLength": 80,
               "description": "a requirement id such as RFC9293-MUST-13 or "
                              "RFC5961-3.2-challenge-ack"},
        "rfc": {"type": "integer", "minimum": 1, "maximum": 99999,
                "description": "an RFC number such as 9293"},
        "section": {"type": "string", "pattern": "^[0-9A-Z][0-9.A-Za-z-]*$",
                    "description": 'a section number written as a string, such as "3.10.7.4"'},
        "quote": {"type": "string", "minLength": 1,
                  "description": "the RFC's sentence, word for word ([...] for words left out)"},
        "keyword": {"enum": list(KEYWORD_LEVELS),
                    "description": "the keyword the quoted sentence carries: "
                                   + ", ".join(KEYWORD_LEVELS)},
        "applies_if": {"type": "string", "pattern": ID_PATTERN,
                       "description": "the id of the requirement whose adoption this one "
                                      "hangs on"},
        "level": {"enum": list(LEVELS),
                  "description": "MUST, SHOULD or MAY, as the keyword (and applies_if) give it"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 300,
                    "description": "what a conforming stack does, in one plain sentence"},
        "scope": {"enum": list(SCOPES),
                  "description": "wire (checkable from outside) or out (with a why)"},
        "why": {"type": "string", "minLength": 1,
                "description": "why the requirement cannot be checked from the wire"},
    },
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "requirements catalogue",
    "type": "object",
    "description": "a mapping with one field, requirements",
    "additionalProperties": False,
    "required": ["requirements"],
    "properties": {
        "requirements": {"type": "array", "minItems": 1, "items": _ENTRY,
                         "description": "a list of requirements"},
    },
}


class CatalogueError(SourceError):
    """A catalogue file that cannot be used, located at file, line and field."""


def weaker(*levels: str) -> str:
    """The weakest of the levels: a MUST that holds only if a SHOULD was
    followed is, for a stack that did not follow it, a SHOULD."""
    return max(levels, key=LEVELS.index)


@dataclass(frozen=True)
class Requirement:
    """One catalogue entry: the RFC's sentence and what a deviation from it means."""

    id: str
    rfc: int
    section: str
    quote: str           # the RFC's words
    keyword: str         # the keyword the quote carries (KEYWORD_LEVELS)
    level: str           # MUST, SHOULD or MAY: derived, see derive_level()
    summary: str         # one plain sentence, for the terminal
    scope: str = "wire"  # wire or out
    why: str = ""        # for scope out: why the suite cannot check it
    applies_if: str = ""     # the id of the adoption this requirement hangs on
    condition_level: str = ""   # that adoption's own level
    line: int = 0        # where the entry starts in its file

    @property
    def citation(self) -> str:
        return f"RFC {self.rfc} section {self.section}"

    @property
    def text(self) -> str:
        """The RFC's sentence (what a report quotes)."""
        return self.quote

    @property
    def in_scope(self) -> bool:
        return self.scope == "wire"

    @property
    def basis(self) -> str:
        """Why a deviation has its level, in words: the keyword, and the
        adoption it hangs on."""
        if self.rfc in INFORMATIONAL_RFCS:
            return f"RFC {self.rfc} is Informational: a deviation is a {self.level}"
        if self.keyword in BCP14:
            own = self.keyword
        elif self.keyword == "none":
            own = "no BCP 14 keyword (processing the RFC describes)"
        else:
            own = f'lowercase "{self.keyword}", not a BCP 14 keyword'
        if self.applies_if:
            return (f"{own} for a stack that adopts {self.applies_if}, itself "
                    f"{self.condition_level}: a deviation is a {self.level}")
        if own == self.level:
            return own
        return f"{own}: a deviation is a {self.level}"



def own_level(keyword: str, rfc: int = 0) -> str:
    """The level a sentence carrying `keyword` gives, in RFC `rfc`."""
    level = KEYWORD_LEVELS[keyword]
    return weaker(level, "MAY") if rfc in INFORMATIONAL_RFCS else level


def derive_level(keyword: str, condition_level: str = "", rfc: int = 0) -> str:
    """The level of a deviation from a sentence carrying `keyword` in RFC
    `rfc`, under a condition of `condition_level` (none when empty)."""
    own = own_level(keyword, rfc)
    return weaker(own, condition_level) if condition_level else own


class Catalogue:
    """The catalogue's entries in file order, and a lookup by id."""

    def __init__(self, entries, path: Path | None = None):
        self.entries: list[Requirement] = list(entries)
        self.path = path
        self._by_id: dict[str, Requirement] = {}
        for entry in self.entries:
            if entry.id in self._by_id:
                raise ValueError(f"the requirement id {entry.id} is given twice")
            self._by_id[entry.id] = entry

    def get(self, req_id: str) -> Requirement | None:
        return self._by_id.get(req_id)

    def nearest(self, req_id: str, n: int = 3) -> list[str]:
        """The ids most like `req_id`, for an error message about a typo."""
        return difflib.get_close_matches(req_id, list(self._by_id), n=n, cutoff=0.5)

    def unknown(self, req_id: str) -> str:
        """What an error says about an id that is not in the catalogue."""
        near = self.nearest(str(req_id))
        hint = f"; the nearest: {', '.join(near)}" if near else ""
        where = self.path.name if self.path else "the catalogue"
        return f"expected a requirement id of {where}; got {req_id!r}{hint}"

    def __contains__(self, req_id) -> bool:
        return req_id in self._by_id

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def in_scope(self) -> list[Requirement]:
        """The entries a case could check: those with scope wire."""
        return [entry for entry in self.entries if entry.in_scope]


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in ``path``; by default the package's, read once and cached."""
    if path is None:
        return _package_catalogue()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _package_catalogue() -> Catalogue:
    # Read and checked once per version of the file and of this module: the
    # catalogue is the largest file a run reads (source.cached).
    return cached("catalogue", [DEFAULT_PATH, Path(__file__)], lambda: _load(DEFAULT_PATH))


@lru_cache(maxsize=None)
def _validator() -> Schema:
    return validator(SCHEMA)


def _load(path: Path) -> Catalogue:
    try:
        documents = list(load_yaml_documents(path))
        if len(documents) != 1:
            line = documents[1][1].line(()) if len(documents) > 1 else 1
            raise CatalogueError(path, line, "", "expected one YAML document, a mapping with "
                                                 f"a requirements list; got {len(documents)}")
        data, marks = documents[0]
        check_schema(data, marks, path, _validator())
    except CatalogueError:
        raise
    except SourceError as exc:
        raise CatalogueError(exc.path, exc.line, exc.field, exc.message) from None
    except OSError as exc:
        raise CatalogueError(path, None, "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogueError(path, None, "", "cannot be read: expected UTF-8 text") from None

    items = data["requirements"]
    first_line: dict[str, int] = {}
    for i, item in enumerate(items):
        where = ("requirements", i, "id")
        if item["id"] in first_line:
            raise CatalogueError(path, marks.line(where), dotted(where),
                                 f"the id {item['id']} is given twice: at line "
                                 f"{first_line[item['id']]} and here, at line "
                                 f"{marks.line(where)}; expected each id once")
        first_line[item["id"]] = marks.line(where)
        _check_entry(item, ("requirements", i), marks, path)
    by_id = {item["id"]: item for item in items}
    entries = [_entry(item, ("requirements", i), marks, path, by_id)
               for i, item in enumerate(items)]
    return Catalogue(entries, path)


def _keyword_in(keyword: str, quote: str) -> bool:
    """Whether the quote carries the keyword, as a word and in its case."""
    return re.search(rf"(?<![A-Za-z-]){re.escape(keyword)}(?![A-Za-z-])", quote) is not None


def _check_entry(item: dict, where: tuple, marks: Marks, path: Path) -> None:
    """The rules of one entry that a schema does not say."""

    def error(field: str, message: str) -> CatalogueError:
        return CatalogueError(path, marks.line(where + (field,)), dotted(where + (field,)),
                              message)

    req_id, rfc, keyword = item["id"], item["rfc"], item["keyword"]
    quote = " ".join(item["quote"].split())
    if not req_id.startswith(f"RFC{rfc}-"):
        raise error("id", f"expected an id that starts with RFC{rfc}- (the entry's rfc); "
                          f"got {req_id!r}")
    label = APPENDIX_B_ID.match(req_id)
    if label:
        kind, number = label.groups()
        if keyword not in LABEL_KEYWORDS[kind]:
            raise error("keyword", f"expected {' or '.join(LABEL_KEYWORDS[kind])} for an RFC "
                                   f"9293 {kind}-n requirement (its label gives the keyword); "
                                   f"got {keyword!r}")
        carries_label = re.search(rf"\([^()]*\b{kind}-{number}\b[^()]*\)", quote)
        if not carries_label and req_id not in UNLABELLED_IN_TEXT:
            raise error("quote", f"expected the sentence labelled ({kind}-{number}) in RFC "
                                 f"9293; the quote does not carry the label")
    # The label marks the requirement even where the sentence's own word is
    # lowercase (MUST-67: "must be less than or equal to").
    marked_by_label = bool(label) and req_id not in UNLABELLED_IN_TEXT
    if keyword == "none":
        carried = [k for k in BCP14 if _keyword_in(k, quote)]
        if carried:
            raise error("keyword", f"expected the keyword the quote carries ({carried[0]}); "
                                   f"got 'none'")
    elif not marked_by_label and not _keyword_in(keyword, quote):
        raise error("keyword", f"expected a keyword the quoted sentence carries; the quote "
                               f"has no {keyword!r}")
    why = item.get("why", "")
    if item["scope"] == "out" and not why:
        # Reported at the scope line: that is where the author said "out".
        raise CatalogueError(path, marks.line(where + ("scope",)), dotted(where + ("why",)),
                             "expected a why: beside scope: out, saying why the suite "
                             "cannot check the requirement from the wire")
    if item["scope"] == "wire" and why:
        raise error("why", "expected no why: for scope: wire (a why explains scope: out)")


def _condition_level(item: dict, by_id: dict, where: tuple, marks: Marks, path: Path) -> str:
    """The level of the adoption an entry hangs on ('' for none), following a
    chain of applies_if to its end."""
    seen = [item["id"]]
    level = ""
    current = item
    while "applies_if" in current:
        target = current["applies_if"]
        field = where + ("applies_if",)
        if target not in by_id:
            near = difflib.get_close_matches(target, list(by_id), n=3, cutoff=0.5)
            hint = f"; the nearest: {', '.join(near)}" if near else ""
            raise CatalogueError(path, marks.line(field), dotted(field),
                                 f"expected the id of an entry of this catalogue; got "
                                 f"{target!r}{hint}")
        if target in seen:
            raise CatalogueError(path, marks.line(field), dotted(field),
                                 f"expected a chain of applies_if that ends; "
                                 f"{' -> '.join(seen + [target])} goes round")
        seen.append(target)
        current = by_id[target]
        own = own_level(current["keyword"], current["rfc"])
        level = weaker(level, own) if level else own
    return level


def _entry(item: dict, where: tuple, marks: Marks, path: Path, by_id: dict) -> Requirement:
    condition_level = _condition_level(item, by_id, where, marks, path)
    level = derive_level(item["keyword"], condition_level, item["rfc"])
    if item["level"] != level:
        because = f"the quote's keyword is {item['keyword']!r}"
        if item["rfc"] in INFORMATIONAL_RFCS:
            because += f" in RFC {item['rfc']}, an Informational RFC"
        if condition_level:
            because += f" and it applies if {item['applies_if']} ({condition_level}) is adopted"
        raise CatalogueError(path, marks.line(where + ("level",)), dotted(where + ("level",)),
                             f"expected {level}: {because}; got {item['level']!r}")
    return Requirement(
        id=item["id"], rfc=item["rfc"], section=item["section"],
        quote=" ".join(item["quote"].split()), keyword=item["keyword"], level=level,
        summary=" ".join(item["summary"].split()), scope=item["scope"],
        why=" ".join(item.get("why", "").split()), applies_if=item.get("applies_if", ""),
        condition_level=condition_level, line=marks.line(where) or 0)
