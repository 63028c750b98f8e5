"""A case's own target settings (``target.sysctls``: RFC 1337 on, syncookies
off...): set before the case, put back after it."""

from __future__ import annotations

import time

from .evidence import Event, NoteEvent
from .outcomes import CannotDecide, NotApplicable


class CaseSettings:
    def __init__(self, target, sysctls: dict, ladder: list[Event]):
        self.target, self.sysctls, self.ladder = target, sysctls, ladder
        self.restore: dict[str, str] = {}   # the settings changed, with their old values

    def apply(self) -> None:
        if not self.sysctls:
            return
        setter = getattr(self.target, "set_sysctl", None)
        if setter is None:
            settings = ", ".join(f"{k}={v}" for k, v in self.sysctls.items())
            raise NotApplicable(f"not applicable to {self.target.name}: the case needs "
                                f"the Linux setting(s) {settings}")
        for key, value in self.sysctls.items():
            try:
                self.restore[key] = setter(key, value)
            except Exception as exc:  # noqa: BLE001 - any failure means: cannot decide
                raise CannotDecide(f"cannot set {key}={value} on the target: {exc}") from None
            self.ladder.append(NoteEvent(time.time(), f"target setting {key}={value}"))

    def put_back(self) -> str | None:
        """Restore what apply() changed; the reason the verdict cannot stand,
        if a setting could not be restored."""
        problem = None
        for key, value in self.restore.items():
            try:
                self.target.set_sysctl(key, value)
            except Exception as exc:  # noqa: BLE001
                problem = (f"could not restore {key}={value} after the case ({exc}); "
                           f"later verdicts would be made under the wrong settings")
        self.restore = {}
        return problem
