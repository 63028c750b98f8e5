"""What the run left out: every item deselected (by -k, -m, --lf, --deselect,
or as slow without --slow), by case, target and family, for results.json's
selection (conformance/selection.py counts them)."""

from __future__ import annotations

from . import keys

SLOW = "slow"             # a slow case, run only with --slow or -m slow
SELECTION = "selection"   # -k, -m, --lf, --deselect: the command line's choice


def note_deselected(config, items, why: str = SELECTION) -> None:
    """Keep what pytest_deselected says, one entry per item (plain JSON: it
    crosses from an xdist worker in its workeroutput)."""
    left = config.stash.setdefault(keys.DESELECTED, [])
    for item in items:
        case = getattr(item, "case", None)
        if case is not None:
            left.append({"case": case.id, "target": item.target, "family": item.family,
                         "why": why})
        else:
            left.append({"case": item.nodeid, "target": "", "family": "", "why": why})


