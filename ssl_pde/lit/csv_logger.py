"""A CSV logger whose metric history survives a resume.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when a run restarts in the same directory, so a resumed
run's table held only the epochs after the resume. :class:`ResumableCSVLogger` keeps the earlier rows: when
the first metrics of the new process are saved, the old rows logged before that step are kept (rows at or
after it were logged after the checkpoint the run resumed from, and are replaced), so the file stays one
continuous table with the union of the columns. Every save replaces the file atomically (a temporary file
renamed over it), so a kill at any moment, even while saving, loses nothing written before.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


def _step(row: dict[str, Any]) -> int | None:
    try:
        return int(float(row["step"]))
    except (KeyError, TypeError, ValueError):
        return None  # no step, or a line cut short by a kill


class _KeepingWriter(ExperimentWriter):
    """Keeps the earlier process's rows and replaces the file atomically at every save, so that a kill at any
    moment leaves either the previous complete table or the new one."""

    def __init__(self, log_dir: str) -> None:
        path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self._rows: list[dict[str, Any]] = []
        self._first_save = True
        if os.path.isfile(path):
            with open(path, newline="") as f:
                self._rows = [r for r in csv.DictReader(f) if _step(r) is not None]
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        """Lightning deletes the old metrics.csv here; this writer keeps it until it writes the new table."""

    def save(self) -> None:
        if not self.metrics:
            return
        if self._first_save:  # rows at or after the resumed step were logged after the checkpoint: replaced
            first = min(int(m["step"]) for m in self.metrics)
            self._rows = [r for r in self._rows if _step(r) < first]
            self._first_save = False
        self._rows += self.metrics
        keys = sorted(set().union(*self._rows))
        tmp = f"{self.metrics_file_path}.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self._rows)
        os.replace(tmp, self.metrics_file_path)
        self.metrics_keys = keys
        self.metrics = []


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` (same arguments) that keeps the rows of an interrupted run when the run resumes."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment
