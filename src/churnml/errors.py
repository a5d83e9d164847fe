"""User-facing errors: the CLI prints their message and exits non-zero, no traceback."""

from __future__ import annotations


class ChurnmlError(Exception):
    """A problem the user can fix (bad input, bad config, missing file)."""


class ContractError(ChurnmlError):
    """A dataset breaks the data contract; ``violations`` lists every problem found."""

    def __init__(self, message: str, violations: list | None = None):
        super().__init__(message)
        self.violations = list(violations or [])
