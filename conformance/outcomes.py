"""How a step ends when it does not simply hold: the three exceptions the
engine turns into a verdict (FAIL, ERROR, not applicable)."""

from __future__ import annotations


class StepFailed(Exception):
    """The target did not do what the step expects: a FAIL of the step's requirement."""

    def __init__(self, step, expected: str, actual: str, alternative: str | None = None,
                 requirement: str | None = None):
        super().__init__(actual)
        self.step, self.expected, self.actual, self.alternative = step, expected, actual, alternative
        # The requirement the failure breaks, when it is not the step's own:
        # the alternative's, for a step of an alternative the target followed.
        self.requirement = requirement


class CannotDecide(Exception):
    """The suite cannot tell what the target did."""


class NotApplicable(Exception):
    """The case needs something this target does not have (a Linux setting,
    a socket option its API lacks)."""
