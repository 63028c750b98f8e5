"""Baselines: a target's known deviations, each with the reason.

A run with a baseline fails only on change (tlsfuzzer's per-implementation
manifests of expected failures, each with a comment saying why):

* a case the baseline lists that fails (or warns) is a *known deviation*;
* a listed case that now passes is a failure: the baseline is out of date;
* a case that fails and is not listed fails as usual.

The file (``baselines/<target>.yaml``)::

    target: linux
    deviations:
      - requirement: RFC9293-3.10.7.2-listen-syn
        reason: >
          Linux silently drops a SYN that also carries FIN in LISTEN.
        cases:
          - probes.syn-fin-urg-psh-to-listener  # both address families
          - handshake.synack-mss[ipv6]          # one family only

Each deviation names the catalogue requirement it deviates from
(``requirement:``, an id of conformance/requirements.yaml): the reason says
what the target does, the catalogue says what the RFC's sentence is.  A
listed case is KNOWN only while it deviates from that requirement
(conformance.verdict.judge).

Bad input is one :class:`BaselineError` naming the file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .baseline_draft import PLACEHOLDER
from .requirements import load_catalogue
from .source import SourceError, dotted, load_yaml_documents, validator

_SCHEMA = yaml.safe_load("""
type: object
additionalProperties: false
required: [target, deviations]
properties:
  target: {type: string, description: the target this baseline describes, such as linux}
  version: {type: string, description: the target version the baseline was made against}
  deviations:
    description: a list of {requirement, reason, cases}
    type: array
    items:
      type: object
      additionalProperties: false
      required: [requirement, reason, cases]
      properties:
        requirement: {type: string, description: "the id of the catalogue requirement the target deviates from, such as RFC9293-MUST-13"}
        reason: {type: string, minLength: 10, description: what the target does instead}
        cases:
          description: a list of case ids, each optionally followed by [ipv4] or [ipv6]
          type: array
          minItems: 1
          items: {type: string, pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*(\\\\[(ipv4|ipv6)\\\\])?$"}
""")
_KEY = re.compile(r"^(?P<case>[^\[]+)(\[(?P<family>ipv4|ipv6)\])?$")


class BaselineError(Exception):
    """A baseline file that cannot be used, located at file, line and field."""


@dataclass(frozen=True)
class Deviation:
    reason: str
    path: Path
    line: int
    requirement: str = ""   # the catalogue id it deviates from

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Baseline:
    path: Path
    target: str
    deviations: dict[tuple[str, str | None], Deviation]

    def lookup(self, case_id: str, family: str) -> Deviation | None:
        """The listed deviation for this case in this family, if any."""
        return self.deviations.get((case_id, family)) or self.deviations.get((case_id, None))

    def entries(self):
        return self.deviations.items()

    def naming_none_of(self, case_ids: set[str]) -> list[tuple[str, Deviation]]:
        """The entries whose case is none of `case_ids`, in line order: a case
        renamed or removed since, or a typo, that would excuse nothing."""
        return sorted(((key[0], deviation) for key, deviation in self.deviations.items()
                       if key[0] not in case_ids), key=lambda item: item[1].line)


def resolve(option: str, target: str) -> Path:
    """The baseline file for `target`: the option names a file, or a directory
    holding ``<target>.yaml``."""
    path = Path(option)
    return path / f"{target}.yaml" if path.is_dir() else path


@lru_cache(maxsize=None)
def load_baseline(path: Path) -> Baseline:
    path = Path(path)
    try:
        documents = list(load_yaml_documents(path))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read: {exc.strerror}") from None
    except SourceError as exc:
        raise BaselineError(str(exc)) from None
    if len(documents) != 1:
        raise BaselineError(f"{path}: expected one YAML document, found {len(documents)}")
    data, marks = documents[0]
    errors = sorted(validator(_SCHEMA).iter_errors(data),
                    key=lambda e: -len(e.absolute_path))
    if errors:
        error = errors[0]
        where = tuple(error.absolute_path)
        expected = error.schema.get("description", error.message) if isinstance(error.schema, dict) \
            else error.message
        if error.validator == "required":
            message = error.message
        elif error.validator == "additionalProperties":
            message = f"{error.message}; expected {', '.join(error.schema['properties'])}"
        else:
            message = f"expected {expected}; got {error.instance!r}"
        raise BaselineError(f"{path}:{marks.line(where)}: {dotted(where) or 'file'}: {message}")
    catalogue = load_catalogue()
    deviations: dict[tuple[str, str | None], Deviation] = {}
    for i, entry in enumerate(data["deviations"]):
        if entry["reason"].lstrip().startswith(PLACEHOLDER):
            where = ("deviations", i, "reason")
            raise BaselineError(f"{path}:{marks.line(where)}: {dotted(where)}: a drafted reason "
                                f"({PLACEHOLDER}): write what the target does instead, and why")
        if entry["requirement"] not in catalogue:
            where = ("deviations", i, "requirement")
            raise BaselineError(f"{path}:{marks.line(where)}: {dotted(where)}: "
                                f"{catalogue.unknown(entry['requirement'])}")
        for j, text in enumerate(entry["cases"]):
            match = _KEY.match(text)
            key = (match.group("case"), match.group("family"))
            line = marks.line(("deviations", i, "cases", j))
            if key in deviations:
                raise BaselineError(f"{path}:{line}: deviations[{i}].cases[{j}]: {text} is "
                                    f"listed twice (also at line {deviations[key].line})")
            deviations[key] = Deviation(" ".join(entry["reason"].split()), path, line,
                                        entry["requirement"])
    return Baseline(path, data["target"], deviations)
