"""Checks of output paths, made before a command writes anything."""

from __future__ import annotations

import os
from pathlib import Path

from ssl_pde.core.errors import UserError


def check_output_dir(path: Path, what: str) -> None:
    """Refuse an output directory that is a file, lies under a file, or cannot be created or written.

    Args:
        path: the directory (it need not exist yet).
        what: its config key, named in the message (``out_dir``, ``run_dir``).

    Raises:
        UserError: one of the cases above, naming the path.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file, not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {str(path)!r} lies under {str(parent)!r}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {str(path)!r} cannot be written: {str(parent)!r} is not writable")
