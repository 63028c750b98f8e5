"""The selection of a run as data, for results.json's run info: what was
left out (the deselected items counted by why and by case), the case files
run with a digest of each and of them all, and their folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import CATALOGUE


def left_out(deselected: list[dict]) -> dict:
    """The deselected items counted by why, and by case (the items of one
    case over its targets and families collapsed), in case order."""
    by_why: dict[str, int] = {}
    by_case: dict[tuple, int] = {}
    for entry in deselected:
        by_why[entry["why"]] = by_why.get(entry["why"], 0) + 1
        key = (entry["case"], entry["why"])
        by_case[key] = by_case.get(key, 0) + 1
    return {"total": len(deselected), "by_why": by_why,
            "cases": [{"case": case, "why": why, "items": n}
                      for (case, why), n in sorted(by_case.items())]}


def case_files(files) -> dict[str, str]:
    """Each case file run, as results.json names it, with the SHA-256 of its bytes."""
    out = {}
    for name in sorted(set(files)):
        try:
            out[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            out[name] = ""      # gone since: the digest says it could not be read
    return out


def cases_digest(files: dict[str, str]) -> str:
    """One digest of the case files run: their names and contents, so that two
    runs of the same cases have the same digest wherever the checkout is.
    A file of the built-in catalogue counts by its place in the catalogue."""
    lines = [f"{_portable(name)}\0{digest}\n" for name, digest in files.items()]
    return "sha256:" + hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def _portable(name: str) -> str:
    path = Path(name).resolve()
    if path.is_relative_to(CATALOGUE):
        return f"catalogue/{path.relative_to(CATALOGUE)}"
    return name


def folders(files) -> list[str]:
    """The folders of the case files run, the catalogue's by name."""
    out = set()
    for name in files:
        path = Path(name).resolve().parent
        out.add(f"{path.relative_to(CATALOGUE)}" if path.is_relative_to(CATALOGUE) else
                str(Path(name).parent))
    return sorted(out)


def catalogue_left_out(files) -> list[str]:
    """The built-in catalogue's folders none of whose cases ran, when some did."""
    ran = {Path(name).resolve() for name in files}
    if not any(path.is_relative_to(CATALOGUE) for path in ran):
        return []
    all_folders = sorted(p.name for p in CATALOGUE.iterdir()
                         if p.is_dir() and any(p.rglob("*.yaml")))
    return [name for name in all_folders
            if not any(path.is_relative_to(CATALOGUE / name) for path in ran)]
