"""A case file: the documents of one YAML file, each a case or a grid.

A case document is built by :mod:`conformance.case`; a grid document (a
mapping with ``grid:``) is a table that :mod:`conformance.grid` expands into
cases.  This module is the one place that tells them apart, so that neither
of those modules imports the other's reader.
"""

from __future__ import annotations

from pathlib import Path

from .case import Case, CaseError, build_case
from .grid import expand_grid
from .source import ErrorList, load_yaml_documents


def load_case_file(path: Path, text: str | None = None) -> list[Case]:
    """All cases of one file.  Raises CaseError: a SourceErrors with every
    error of the file's documents once the YAML could be read."""
    path = Path(path)
    try:
        documents = list(load_yaml_documents(path, text))
    except OSError as exc:
        raise CaseError(path, None, "", f"cannot be read: {exc.strerror}") from None
    if not documents:
        raise CaseError(path, 1, "", "the file holds no case")
    cases, found = [], ErrorList()
    for data, marks in documents:
        with found.checking():
            if isinstance(data, dict) and "grid" in data:
                cases.extend(expand_grid(data, marks, path))
            elif not isinstance(data, dict):
                raise CaseError(path, marks.line(()), "", "expected a case: a mapping with id, "
                                                          "title, requirements, target and steps")
            else:
                cases.append(build_case(data, marks, path))
    found.check()
    return cases


def case_ids_under(paths) -> set[str]:
    """The ids of every case in the case files at or under `paths` (a file
    that cannot be read adds none: its own error is reported where it is swept)."""
    ids: set[str] = set()
    for path in map(Path, paths):
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            if file.suffix not in (".yaml", ".yml") or not file.is_file():
                continue
            try:
                ids.update(case.id for case in load_case_file(file))
            except CaseError:
                continue
    return ids
