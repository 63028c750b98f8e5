"""What a sweep comes to, per stack: the closing lines of the terminal (in the
manner of h2spec: counts, then each failure with requirement, expected and
actual) and the exit status a CI job acts on.

Exit status of a sweep:

    0  conformant, or every deviation is listed in the baseline
    1  non-conformant: a requirement failed (or a baselined deviation is fixed,
       so the baseline is out of date)
    2  interrupted (pytest's own)
    3  the tool could not run or could not decide: the lab or a target did not
       start, a target died, a case file is invalid (and nothing failed)
    4  the command line is wrong (pytest's own usage error)

A failure wins over an error: it is a finding about the target that no rerun
will change, while the errors say the results are incomplete.
"""

from __future__ import annotations

from collections import Counter

from .results import STATUSES

CONFORMANT, NON_CONFORMANT, INTERRUPTED, COULD_NOT_RUN, USAGE = 0, 1, 2, 3, 4

EXIT_MEANINGS = {
    CONFORMANT: "conformant, or every deviation is in the baseline",
    NON_CONFORMANT: "non-conformant",
    COULD_NOT_RUN: "the tool could not run or decide every case",
    INTERRUPTED: "interrupted (Ctrl-C or SIGTERM): the verdicts are of the items that finished",
}

_WORDS = {"pass": "passed", "fail": "failed", "warn": "warned", "info": "info",
          "known": "known", "fixed": "fixed", "error": "errors", "n/a": "not applicable"}


def tally(records: list[dict], targets: list[str] = ()) -> dict[str, Counter]:
    """Statuses per target: `targets` first, in their order (the order of
    --target), then any other in the order first seen."""
    counts: dict[str, Counter] = {target: Counter() for target in targets}
    for rec in records:
        if not rec["target"]:
            continue     # a case file that could not be read belongs to no stack
        counts.setdefault(rec["target"], Counter())[rec["status"]] += 1
    return counts


def exit_status(records: list[dict]) -> int:
    statuses = Counter(rec["status"] for rec in records)
    if statuses["fail"] or statuses["fixed"]:
        return NON_CONFORMANT
    if statuses["error"]:
        return COULD_NOT_RUN
    return CONFORMANT


def stack_verdict(counts: Counter) -> str:
    """One stack in a few words, the first thing a reader looks for."""
    if counts["fail"] or counts["fixed"]:
        words = [f"{counts['fail']} failed"] if counts["fail"] else []
        if counts["fixed"]:
            words.append(f"{counts['fixed']} fixed (the baseline is out of date)")
        verdict = "NON-CONFORMANT: " + ", ".join(words)
    elif counts["error"]:
        verdict = f"UNDECIDED: {counts['error']} could not be decided"
    elif counts["known"]:
        verdict = f"MATCHES ITS BASELINE: {counts['known']} known deviations"
    else:
        verdict = "CONFORMANT"
    if counts["warn"] and not counts["fail"]:
        verdict += f" ({counts['warn']} SHOULD deviation{'s' if counts['warn'] > 1 else ''})"
    return verdict


def count_line(counts: Counter) -> str:
    total = sum(counts.values())
    parts = [f"{counts[s]} {_WORDS[s]}" for s in STATUSES if counts[s]]
    return f"{total} {'check' if total == 1 else 'checks'}, " + ", ".join(parts)


# A stack's verdict when the sweep was stopped before its end.
INTERRUPTED_VERDICT = "INTERRUPTED: only what finished is known"


def closing_summary(records: list[dict], cases: dict[str, dict] | None = None,
                    targets: list[str] = (), interrupted: bool = False) -> list[str]:
    """The per-stack summary, then every failure and error, h2spec-style.  An
    interrupted sweep claims nothing of a stack but what finished."""
    cases = cases or {}
    counts = tally(records, targets)
    width = max((len(t) for t in counts), default=0)
    lines = []
    for target, counter in counts.items():
        verdict = (INTERRUPTED_VERDICT if interrupted
                   else stack_verdict(counter))
        lines.append(f"{target.ljust(width)}  {verdict}")
        lines.append(f"{' ' * width}  {count_line(counter)}")
    retried = [r for r in records if r.get("retries")]
    if retried:
        runs = sum(r["retries"] for r in retried)
        one = len(retried) == 1
        lines.append(f"{len(retried)} {'check' if one else 'checks'} ran again: the link "
                     f"damaged {'its' if one else 'their'} evidence, or the tester was late to "
                     f"send ({runs} more {'run' if runs == 1 else 'runs'})")
    problems = [r for r in records if r["status"] in ("fail", "fixed", "error")]
    if problems:
        lines += ["", "Failures and errors:"]
        for rec in problems:
            title = cases.get(rec["case"], {}).get("title", "")
            where = (f"[{rec['target']}] {rec['case']} [{rec['family']}]" if rec["target"]
                     else rec["case"])
            lines.append(f"  {rec['status'].upper()} {where}" + (f": {title}" if title else ""))
            if rec["status"] == "error":
                lines.append(f"      {_first_line(rec['reason'])}")
                continue
            lines.append(f"      {rec['requirement']} ({rec['level']})")
            if rec["status"] == "fixed":
                lines.append("      now conforms: remove it from the baseline")
            else:
                lines.append(f"      Expected: {rec['expected']}")
                lines.append(f"        Actual: {rec['actual']}")
    return lines


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "no reason given").strip().splitlines()[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."
