"""A fresh directory per run: `--report reports` writes the run into
`reports/<UTC timestamp>/` and points `reports/latest` at it, so nothing of
an earlier run (its captures, its junit.xml) sits beside a new report, and
the latest report is always at the same path:

    reports/
        2026-12-03T192610Z/     index.html, cases/, pcap/, results.json,
                                junit.xml, pytest.html
        2026-12-03T201544Z/
        latest -> 2026-12-03T201544Z

The report folder holds only runs and `latest`: a file the options put
directly in it (`--junitxml reports/junit.xml`, as `tcpconf sweep` and
`./run sweep` do by default) goes into the run's directory instead.
`latest` moves when a run's report is written; a run that wrote nothing
(the lab could not start, say) leaves no directory behind.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

LATEST = "latest"


def stamp(when: datetime | None = None) -> str:
    """A run's directory name: its UTC start, sortable, with no colon (which
    some file systems and URLs take badly)."""
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")


def make_run_dir(report: Path, when: datetime | None = None) -> Path:
    """Create the run's directory under `report`; a second run in the same
    second gets a suffix (-2, -3, ...), never another run's directory."""
    report = Path(report)
    report.mkdir(parents=True, exist_ok=True)
    name = stamp(when)
    for n in range(1, 1000):
        candidate = report / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise OSError(f"{report}: a thousand runs started in the second {name}")


def point_latest(run_dir: Path) -> Path | None:
    """Point `<report>/latest` at the run (a relative symbolic link, replaced
    atomically).  Returns the link, or None when `latest` is something else
    (a directory of the user's), which is left alone."""
    run_dir = Path(run_dir)
    link = run_dir.parent / LATEST
    if link.exists() and not link.is_symlink():
        return None
    temporary = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(temporary, link)
    except OSError:
        if temporary.is_symlink():
            temporary.unlink()
        return None
    return link


def inside_run(path: str | None, report: Path, run_dir: Path) -> str | None:
    """A path the options named: directly in the report folder, it goes into
    the run's directory; anywhere else it stays as the user named it."""
    if not path:
        return path
    given = Path(path)
    if Path(os.path.abspath(given)).parent == Path(os.path.abspath(report)):
        return str(Path(run_dir) / given.name)
    return path


def remove_if_empty(run_dir: Path) -> bool:
    """Remove a run's directory holding nothing but empty folders (a run that
    ended before its first capture); True if it was removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return False
    for root, dirs, files in os.walk(run_dir, topdown=False):
        if files:
            return False
        for name in dirs:
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                return False
    try:
        run_dir.rmdir()
    except OSError:
        return False
    return True
