"""What the run left out: every item deselected (by -k, -m, --lf, --deselect,
or as slow without --slow), by case, target and family, for results.json's
selection (conformance/selection.py counts them)."""

from __future__ import annotations

from .. import selection
from ..tcp import FAMILIES
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


def run_selection(config, items: int, cases: dict[str, dict]) -> dict:
    """What the command line chose and what it left out (conformance/selection.py),
    and the options a rerun of one case needs (the report's reproduce command)."""
    families = list(config.stash[keys.FAMILIES])
    files = [info["file"] for info in cases.values() if info.get("file")]
    return {"args": [str(a) for a in config.invocation_params.args],
            "keyword": config.option.keyword or "", "markexpr": config.option.markexpr or "",
            "lf": bool(getattr(config.option, "lf", False)),
            "slow": bool(config.option.slow),
            "targets": list(config.stash[keys.TARGETS]), "families": families,
            "families_left_out": [f for f in FAMILIES if f not in families],
            "items": items,
            "left_out": selection.left_out(config.stash.get(keys.DESELECTED, [])),
            "folders": selection.folders(files),
            "catalogue_left_out": selection.catalogue_left_out(files),
            "rerun_options": rerun_options(config)}


# The suite's options that a rerun of one case on the same target needs, as
# they were given (the target, family and case are the rerun's own).
_RERUN = ("target_sysctl", "target_nft", "confirm", "link_faults", "baseline", "slow",
          "remote_iface", "remote_address", "remote_port", "remote_closed_port",
          "tester_address", "agent_command", "black_box", "container", "container_engine",
          "container_network", "device_outside", "device_inside", "device_kind",
          "device_address", "device_host", "device_inside_gateway")


# Those whose default is not empty.
_DEFAULTS = {"tester_address": "host", "device_kind": "firewall"}


def rerun_options(config) -> list[str]:
    """The options of _RERUN that differ from their defaults, as arguments."""
    out = []
    for dest in _RERUN:
        value = getattr(config.option, dest, None)
        if value in (None, False, [], 0, "") or value == _DEFAULTS.get(dest):
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            out += [f"{flag}={v}" for v in value]
        else:
            out.append(f"{flag}={value}")
    if bool(config.getini("strict")):     # items.strict: pytest's strict mode
        out += ["-o", "strict=true"]
    return out
