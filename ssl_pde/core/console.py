"""A quiet terminal for multi-stage commands (``ssl-pde-demo``): stage progress bars on the console, everything
else (library logs, Lightning's notices, Python warnings, W&B's messages, subprocess output) in a log file."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Loggers that attach console handlers of their own (Lightning does at import when the root has none).
NOISY = ("lightning", "lightning.pytorch", "lightning.fabric", "py.warnings")


def stage_progress() -> Progress:
    """One bar per stage: its name, the bar, done/total, a free-text status and the elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(bar_width=32),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )


class ProgressEvents(logging.Handler):
    """Advances a progress task by one for every log record carrying ``extra={"progress": event}``."""

    def __init__(self, progress: Progress, task: Any, event: str) -> None:
        super().__init__(logging.INFO)
        self.progress, self.task, self.event = progress, task, event

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "progress", None) == self.event:
            self.progress.advance(self.task)


@contextmanager
def _fd_to(fd: int, target: IO[str]) -> Iterator[None]:
    """Point file descriptor ``fd`` at ``target``'s file while the context lasts."""
    sys.stderr.flush()
    saved = os.dup(fd)
    os.dup2(target.fileno(), fd)
    try:
        yield
    finally:
        target.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _console(h: logging.Handler) -> bool:
    return isinstance(h, logging.StreamHandler)


@contextmanager
def quiet_console(log_file: Path) -> Iterator[None]:
    """Send every log record (and Python warning, via logging) to ``log_file`` instead of the console, silence
    W&B's console messages, and restore all of it on exit. ``print`` and rich output still reach the console."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    saved = {name: (lg.handlers[:], lg.propagate) for name in ("", *NOISY) for lg in [logging.getLogger(name)]}
    level = root.level
    env = os.environ.get("WANDB_SILENT")
    for name in ("", *NOISY):  # console handlers go; file handlers stay
        lg = logging.getLogger(name)
        lg.handlers = [h for h in lg.handlers if isinstance(h, logging.FileHandler) or not _console(h)]
    for name in NOISY:
        logging.getLogger(name).propagate = True  # up to the root, whose only handler is now the file
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    os.environ["WANDB_SILENT"] = "true"
    logging.captureWarnings(True)
    try:  # what libraries write to stderr themselves (W&B's notices, at the Python or the file-descriptor level)
        with warnings.catch_warnings(), log_file.open("a") as err, _fd_to(2, err), redirect_stderr(err):
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
        for name, (handlers, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers, lg.propagate = handlers, propagate
        if env is None:
            os.environ.pop("WANDB_SILENT", None)
        else:
            os.environ["WANDB_SILENT"] = env
