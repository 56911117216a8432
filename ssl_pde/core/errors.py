"""The user-error type: bad input reported by a command line as one line with exit status 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: reported as one line, exit status 2."""
