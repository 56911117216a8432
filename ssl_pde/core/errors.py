"""The user-error types: bad input reported by a command line as one line with exit status 2.

Only these become the one-line ``error:`` message; every other exception is a bug and keeps its traceback.
``UserError`` deliberately does not subclass ``ValueError``: a ``ValueError`` raised by a bug must not be
mistaken for bad input.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a value, a file, a path): reported as one line, exit status 2."""


class DataError(UserError):
    """The data itself is unusable (non-finite values, a corrupt trajectory); the message names the file."""


class DivergenceError(UserError):
    """Training diverged (a non-finite loss): a setting to change, not a bug; the message says which."""
