"""The requirements catalogue: every RFC requirement the suite has in view.

Case files cite the requirements they check inline, which tells what the cases
cover but not what they leave out.  The catalogue (``requirements.yaml`` beside
this module) lists every requirement in scope: RFC 9293's numbered requirements
(its Appendix B), the SEGMENT ARRIVES rules it leaves un-numbered, and the RFC
5961, 7323, 1337, 6528, ... requirements the suite checks or could check.  The
report's requirement index reads it to show, for each requirement, the cases
that check it, and the requirements no case checks yet.

An entry is in scope (``scope: wire``) when a packet injector, with an agent
driving the target's socket API, can check it from outside; an entry with
``scope: out`` says why not.

Every problem in the file is one :class:`CatalogueError` naming the file, the
line, the field and what was expected.  The YAML loader that keeps line marks
and the schema reporting are the case language's (:mod:`conformance.case`), so
a catalogue and a case file point at their errors the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jsonschema

# The case language's loader and schema reporting.  _check_schema, _dotted and
# _Marks are private to conformance.case; grid.py imports them the same way.
from .case import CaseError, _check_schema, _dotted, _Marks, load_yaml_documents

DEFAULT_PATH = Path(__file__).with_name("requirements.yaml")

LEVELS = ("MUST", "SHOULD", "MAY")
SCOPES = ("wire", "out")

# RFC 9293 section 2.1 labels every keyword sentence: MUST-n, SHLD-n, MAY-n,
# REC-n (RECOMMENDED, a SHOULD); MUST NOT and SHOULD NOT share the MUST and SHLD
# numbering.  Appendix B lists them all.  The label fixes the level.
APPENDIX_B_ID = re.compile(r"^RFC9293-(MUST|SHLD|MAY|REC)-([1-9][0-9]*)$")
LABEL_LEVELS = {"MUST": "MUST", "SHLD": "SHOULD", "MAY": "MAY", "REC": "SHOULD"}

# The schema of the file.  Like conformance/case-schema.yaml, a property's
# "description" is what an error message says was expected.
_ENTRY = {
    "type": "object",
    "description": "a requirement: a mapping with id, rfc, section, level, text and scope",
    "additionalProperties": False,
    "required": ["id", "rfc", "section", "level", "text", "scope"],
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
               "description": "a requirement id such as RFC9293-MUST-13 or "
                              "RFC5961-3.2-challenge-ack"},
        "rfc": {"type": "integer", "minimum": 1, "description": "an RFC number such as 9293"},
        "section": {"type": "string", "pattern": "^[0-9A-Z][0-9.A-Za-z-]*$",
                    "description": 'a section number written as a string, such as "3.10.7.4"'},
        "level": {"enum": list(LEVELS),
                  "description": "MUST, SHOULD or MAY (a MUST NOT is a MUST whose text "
                                 "says 'not')"},
        "text": {"type": "string", "minLength": 1,
                 "description": "the requirement in a sentence or two"},
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


class CatalogueError(CaseError):
    """A catalogue file that cannot be used, located at file, line and field.

    A CaseError, so that whatever reports a broken case file reports a broken
    catalogue the same way.
    """


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    rfc: int
    section: str
    level: str           # MUST, SHOULD or MAY
    text: str
    scope: str           # wire or out
    why: str = ""        # for scope out: why the suite cannot check it
    line: int = 0        # where the entry starts in its file

    @property
    def citation(self) -> str:
        # The same form as case.Requirement.citation.
        return f"RFC {self.rfc} section {self.section}"

    @property
    def in_scope(self) -> bool:
        return self.scope == "wire"


class Catalogue:
    """The catalogue's entries in file order, and a lookup by id."""

    def __init__(self, entries, path: Path | None = None):
        self.entries: list[CatalogueEntry] = list(entries)
        self.path = path
        self._by_id: dict[str, CatalogueEntry] = {}
        for entry in self.entries:
            if entry.id in self._by_id:
                raise ValueError(f"the requirement id {entry.id} is given twice")
            self._by_id[entry.id] = entry

    def get(self, req_id: str) -> CatalogueEntry | None:
        return self._by_id.get(req_id)

    def __contains__(self, req_id) -> bool:
        return req_id in self._by_id

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def in_scope(self) -> list[CatalogueEntry]:
        """The entries a case could check: those with scope wire."""
        return [entry for entry in self.entries if entry.in_scope]


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in ``path``; by default the package's, read once and cached."""
    if path is None:
        return _package_catalogue()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _package_catalogue() -> Catalogue:
    return _load(DEFAULT_PATH)


@lru_cache(maxsize=None)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def _load(path: Path) -> Catalogue:
    try:
        documents = list(load_yaml_documents(path))
        if len(documents) != 1:
            line = documents[1][1].line(()) if documents else 1
            raise CatalogueError(path, line, "", "expected one YAML document, a mapping with "
                                                 f"a requirements list; got {len(documents)}")
        data, marks = documents[0]
        _check_schema(data, marks, path, _validator())
    except CatalogueError:
        raise
    except CaseError as exc:
        raise CatalogueError(exc.path, exc.line, exc.field, exc.message) from None
    except OSError as exc:
        raise CatalogueError(path, None, "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogueError(path, None, "", "cannot be read: expected UTF-8 text") from None

    entries, first_line = [], {}
    for i, item in enumerate(data["requirements"]):
        where = ("requirements", i)
        entry = _entry(item, where, marks, path)
        if entry.id in first_line:
            raise CatalogueError(path, marks.line(where + ("id",)), _dotted(where + ("id",)),
                                 f"the id {entry.id} is given twice: at line "
                                 f"{first_line[entry.id]} and here, at line "
                                 f"{marks.line(where + ('id',))}; expected each id once")
        first_line[entry.id] = marks.line(where + ("id",))
        entries.append(entry)
    return Catalogue(entries, path)


def _entry(item: dict, where: tuple, marks: _Marks, path: Path) -> CatalogueEntry:
    """One schema-checked entry, with the rules a schema does not say."""

    def error(field: str, message: str) -> CatalogueError:
        return CatalogueError(path, marks.line(where + (field,)), _dotted(where + (field,)),
                              message)

    req_id, rfc, level, scope = item["id"], item["rfc"], item["level"], item["scope"]
    if not req_id.startswith(f"RFC{rfc}-"):
        raise error("id", f"expected an id that starts with RFC{rfc}- (the entry's rfc); "
                          f"got {req_id!r}")
    label = APPENDIX_B_ID.match(req_id)
    if label and LABEL_LEVELS[label.group(1)] != level:
        raise error("level", f"expected {LABEL_LEVELS[label.group(1)]} for an RFC 9293 "
                             f"{label.group(1)}-n requirement (its label gives the level); "
                             f"got {level!r}")
    why = item.get("why", "")
    if scope == "out" and not why:
        # Reported at the scope line: that is where the author said "out".
        raise CatalogueError(path, marks.line(where + ("scope",)), _dotted(where + ("why",)),
                             "expected a why: beside scope: out, saying why the suite "
                             "cannot check the requirement from the wire")
    if scope == "wire" and why:
        raise error("why", "expected no why: for scope: wire (a why explains scope: out)")
    return CatalogueEntry(id=req_id, rfc=rfc, section=item["section"], level=level,
                          text=" ".join(item["text"].split()), scope=scope,
                          why=" ".join(why.split()), line=marks.line(where) or 0)
