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
from dataclasses import dataclass, field

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
        verdict = (f"MATCHES ITS BASELINE: {counts['known']} known "
                   f"deviation{'s' if counts['known'] > 1 else ''}")
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

# The groups of the closing summary, most urgent first.  Known deviations are
# counted in each stack's lines only: the baseline already documents them.
_GROUPED = ("fixed", "fail", "error", "warn", "info")
# Past this many groups of warnings and information, one line points to the
# report: the terminal is for the answer, the report for the whole list.
QUIET_GROUPS = 14
GROUPS_TITLE = "By requirement (a case once, whatever its families; [ipv6]: that family only):"
LOUD_GROUPS = 30


@dataclass
class Group:
    """The records of one status that share a requirement (or, for errors,
    a reason): per stack, per case, the families it covered."""
    status: str
    key: str
    level: str
    cases: dict[str, dict[str, list[dict]]] = field(default_factory=dict)

    def case_count(self) -> int:
        return sum(len(by_case) for by_case in self.cases.values())


def group_records(records: list[dict], targets: list[str] = ()) -> list[Group]:
    """Failures, errors and deviations by requirement x stack, each case once
    whatever the families it ran over; the largest groups first in each status."""
    order = {t: i for i, t in enumerate(targets)}
    groups: dict[tuple[str, str], Group] = {}
    for rec in records:
        if rec["status"] not in _GROUPED:
            continue
        key = (first_line(rec.get("reason"), 1000) if rec["status"] == "error"
               else rec.get("requirement") or "no requirement")
        group = groups.setdefault((rec["status"], key),
                                  Group(rec["status"], key, rec.get("level") or ""))
        group.cases.setdefault(rec["target"], {}).setdefault(rec["case"], []).append(rec)
    for group in groups.values():
        group.cases = dict(sorted(group.cases.items(),
                                  key=lambda item: (order.get(item[0], len(order)), item[0])))
    return sorted(groups.values(), key=lambda g: (_GROUPED.index(g.status), -g.case_count(),
                                                   g.key))


def closing_summary(records: list[dict], targets: list[str] = (), interrupted: bool = False,
                    width: int = 100) -> list[str]:
    """The per-stack verdicts and counts, then the failures, errors and
    deviations grouped by requirement x stack (the ladders are in the report,
    and on the terminal with -v).  An interrupted sweep claims nothing of a
    stack but what finished."""
    counts = tally(records, targets)
    name_width = max((len(t) for t in counts), default=0)
    lines = []
    for target, counter in counts.items():
        verdict = INTERRUPTED_VERDICT if interrupted else stack_verdict(counter)
        lines.append(f"{target.ljust(name_width)}  {verdict}")
        lines.append(f"{' ' * name_width}  {count_line(counter)}")
    retried = [r for r in records if r.get("retries")]
    if retried:
        runs = sum(r["retries"] for r in retried)
        one = len(retried) == 1
        lines.append(f"{len(retried)} {'check' if one else 'checks'} ran again: the link "
                     f"damaged {'its' if one else 'their'} evidence, or the tester was late to "
                     f"send ({runs} more {'run' if runs == 1 else 'runs'})")
    groups = group_records(records, list(counts))
    if groups:
        lines += ["", fit(GROUPS_TITLE, width)]
        lines += _group_lines(groups, _families_run(records), width)
    return lines


def _group_lines(groups: list[Group], families_run: dict, width: int) -> list[str]:
    loud = [g for g in groups if g.status in ("fixed", "fail", "error")]
    quiet = [g for g in groups if g.status in ("warn", "info")]
    # The one-line groups' stacks in a column.
    head_width = min(max((len(_head(g)) for g in quiet), default=0), 56)
    lines = []
    for shown, limit in ((loud, LOUD_GROUPS), (quiet, QUIET_GROUPS)):
        for group in shown[:limit]:
            lines += _one_group(group, families_run, width, head_width)
        if len(shown) > limit:
            rest = shown[limit:]
            cases = sum(g.case_count() for g in rest)
            lines.append(fit(f"  ... {len(rest)} more {'groups' if len(rest) > 1 else 'group'}"
                              f" of {cases} {'cases' if cases > 1 else 'case'}: the report "
                              f"lists them", width))
    return lines


def _head(group: Group) -> str:
    level = f" ({group.level})" if group.level and group.status != "error" else ""
    return f"  {group.status.upper().ljust(5)} {group.key}{level}"


def _one_group(group: Group, families_run: dict, width: int, head_width: int) -> list[str]:
    head = _head(group)
    if group.status == "error" and group.case_count() == 1:
        # A reason of its own: said whole, on one line (a file's path and line
        # in it must not be cut).
        [(target, by_case)] = group.cases.items()
        [case] = by_case
        where = f"{target}  {case}" if target else case
        return [f"  ERROR {where}: {group.key}"]
    stacks = [(target or "case files", _case_list(target, by_case, families_run))
              for target, by_case in group.cases.items()]
    if group.status in ("warn", "info") and len(stacks) == 1:
        # One line is enough: the report holds each case's expected and actual.
        return [fit(f"{head.ljust(head_width)}  {stacks[0][0]}: {stacks[0][1]}", width)]
    # An error's reason is said whole: its end often names the fix.
    lines = [head if group.status == "error" else fit(head, width)]
    stack_width = max(len(name) for name, _ in stacks)
    indent = " " * (9 + stack_width)
    for (name, listed), by_case in zip(stacks, group.cases.values()):
        lines.append(fit(f"         {name.ljust(stack_width)}  {listed}", width))
        first = next(iter(by_case.values()))[0]
        if group.status == "fail":
            lines.append(fit(f"{indent}  expected {first['expected']}", width))
            lines.append(fit(f"{indent}  actual   {first['actual']}", width))
            entry = first.get("baseline") or {}
            if entry.get("requirement", group.key) != group.key:
                lines.append(fit(f"{indent}  the baseline lists it against "
                                 f"{entry['requirement']} ({entry['where']})", width))
        elif group.status == "fixed":
            lines.append(fit(f"{indent}  now conforms: remove it from the baseline", width))
    return lines


def _case_list(target: str, by_case: dict[str, list[dict]], families_run: dict) -> str:
    names = []
    for case, recs in by_case.items():
        families = sorted({r["family"] for r in recs if r["family"]})
        partial = families and len(families) < len(families_run.get((target, case), ()))
        names.append(case + (f" [{', '.join(families)}]" if partial else ""))
    count = f"{len(names)} {'case' if len(names) == 1 else 'cases'}"
    return f"{count}: {', '.join(names)}"


def _families_run(records: list[dict]) -> dict[tuple[str, str], set[str]]:
    run: dict[tuple[str, str], set[str]] = {}
    for rec in records:
        run.setdefault((rec["target"], rec["case"]), set()).add(rec["family"])
    return run


def fit(line: str, width: int) -> str:
    """One terminal line: what does not fit is cut, and says so."""
    return line if len(line) <= width else line[:max(width - 3, 20)] + "..."


def first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "no reason given").strip().splitlines()[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."
