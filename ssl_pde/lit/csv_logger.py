"""A CSV logger whose metric history survives a resume.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when a run restarts in the same directory, so a resumed
run's table held only the epochs after the resume. :class:`ResumableCSVLogger` keeps the earlier rows: when
the first metrics of the new process are saved, the old rows logged before that step are written back
first (rows at or after it were logged after the checkpoint the run resumed from, and are replaced), so the
file stays one continuous table with the union of the columns.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _KeepingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self._kept: list[dict[str, Any]] = []
        if os.path.isfile(path):
            with open(path, newline="") as f:
                self._kept = list(csv.DictReader(f))
        super().__init__(log_dir)  # removes the old file (Lightning's behaviour); its rows are in self._kept

    def save(self) -> None:
        if self._kept and self.metrics:
            first = min(int(m["step"]) for m in self.metrics)
            old = [r for r in self._kept if r.get("step") not in (None, "") and int(float(r["step"])) < first]
            keys = sorted(set().union(*old, *self.metrics) if old else set().union(*self.metrics))
            with open(self.metrics_file_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(old)
            self.metrics_keys = keys
            self._kept = []
        super().save()


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
