"""What changed between two sweeps: the release-to-release check.

    tcpconf compare OLD/results.json NEW/results.json   (or python -m conformance compare)

Records are matched by case, target and address family.  The changes that
matter come first:

* new failures: a MUST (or --strict SHOULD) the target met before and now fails;
* new deviations: a SHOULD or MAY it followed before and now does not;
* new errors: cases the suite could decide before and now cannot;
* fixed: deviations (failed, warned, informed or known) that now pass;
* changed alternatives: the target still conforms but now takes another of
  the answers the RFCs allow (one_of), e.g. RST at SND.NXT instead of SEG.ACK;
* other changes of status (a deviation now listed in the baseline, say), and
  cases that appear in only one of the two runs.

Exit status: 1 when something regressed (a new failure or deviation), else 3
when there are new errors (the new run is incomplete) or a file cannot be
read, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .results import DEVIATING, Results

REGRESSED, INCOMPLETE, UNCHANGED = 1, 3, 0

_CONFORMING = ("pass", "fixed")


@dataclass
class Change:
    key: tuple[str, str, str]          # case, target, family
    old: dict | None
    new: dict | None

    def line(self) -> str:
        case, target, family = self.key
        where = f"[{target}] {case} [{family}]"
        if self.old is None:
            return f"{where}: new case, {self.new['status']}"
        if self.new is None:
            return f"{where}: gone (was {self.old['status']})"
        text = f"{where}: {self.old['status']} -> {self.new['status']}"
        if self.new["status"] in DEVIATING or self.new["status"] == "error":
            detail = (self.new["reason"] if self.new["status"] == "error"
                      else f"{self.new['requirement']}: expected {self.new['expected']}; "
                           f"actual {self.new['actual']}")
            text += f"\n      {detail.strip().splitlines()[0] if detail.strip() else ''}"
        if self.old.get("follows") != self.new.get("follows"):
            text += (f"\n      followed {self.old.get('follows') or '(no alternative)'!r}, now "
                     f"{self.new.get('follows') or '(no alternative)'!r}")
        return text


@dataclass
class Comparison:
    new_failures: list[Change] = field(default_factory=list)
    new_deviations: list[Change] = field(default_factory=list)
    new_errors: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    changed_alternatives: list[Change] = field(default_factory=list)
    other_changes: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    SECTIONS = (("new_failures", "New failures"), ("new_deviations", "New deviations (SHOULD/MAY)"),
                ("new_errors", "New errors (the suite could not decide)"), ("fixed", "Fixed"),
                ("changed_alternatives", "Changed alternatives (still conforming)"),
                ("other_changes", "Other changes of status"), ("added", "Only in the new run"),
                ("removed", "Only in the old run"))

    @property
    def exit_status(self) -> int:
        if self.new_failures or self.new_deviations:
            return REGRESSED
        if self.new_errors:
            return INCOMPLETE
        return UNCHANGED

    def text(self, old_name: str, new_name: str) -> list[str]:
        lines = [f"Comparing {old_name} (old) with {new_name} (new)"]
        counts = ", ".join(f"{len(getattr(self, name))} {title.split(' (')[0].lower()}"
                           for name, title in self.SECTIONS)
        lines.append(f"{counts}, {self.unchanged} unchanged")
        for name, title in self.SECTIONS:
            changes = getattr(self, name)
            if changes:
                lines += ["", f"{title} ({len(changes)}):"]
                lines += ["  " + change.line() for change in changes]
        return lines


def compare(old: Results, new: Results) -> Comparison:
    before = {_key(r): r for r in old.records}
    after = {_key(r): r for r in new.records}
    result = Comparison()
    for key in sorted(before.keys() | after.keys()):
        change = Change(key, before.get(key), after.get(key))
        if change.old is None:
            result.added.append(change)
        elif change.new is None:
            result.removed.append(change)
        else:
            bucket = _bucket(change.old, change.new)
            if bucket is None:
                result.unchanged += 1
            else:
                getattr(result, bucket).append(change)
    return result


def _key(record: dict) -> tuple[str, str, str]:
    return record["case"], record["target"], record["family"]


def _bucket(old: dict, new: dict) -> str | None:
    was, now = old["status"], new["status"]
    if was == now:
        if was in _CONFORMING and old.get("follows") != new.get("follows"):
            return "changed_alternatives"
        return None
    if now == "fail" and was != "known":
        return "new_failures"
    if now in ("warn", "info") and was in _CONFORMING:
        return "new_deviations"
    if now == "error":
        return "new_errors"
    if was in DEVIATING and now in _CONFORMING:
        return "fixed"
    return "other_changes"
