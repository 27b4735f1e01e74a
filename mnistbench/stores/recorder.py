"""A sweep's writes to its results store, as its runs end; never the sweep's failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnistbench.errors import MnistbenchError
from mnistbench.record import Run
from mnistbench.stores import Store

logger = logging.getLogger("mnistbench")


class SweepRecorder:
    """A sweep's writes to its store: its environment once, then each run as it ends.

    Never fails the sweep: ``runs.csv`` is the record. The first failure (a locked file past
    its timeout, a full disk, a server that went away) is logged once as a warning; later
    writes are still tried, silently, so a server that comes back gets the rest.
    """

    def __init__(self, store: Store, sweep_id: str, output_dir: Path) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.output_dir = Path(output_dir)
        self.opened = False
        self.warned = False
        self._sweep: dict | None = None  # the sweep's row, until it is written

    def record_sweep(self, environment: dict, *, started_at: str) -> None:
        """Write the sweep's row (its ``environment.json`` and start); when that fails it is
        tried again before each run's."""
        self._sweep = {"environment": environment, "started_at": started_at}
        self._try(lambda: None)

    def record_run(self, run: Run) -> None:
        """Write one run's record, as it was written to ``runs.csv``."""
        self._try(lambda: self.store.record_run(self.sweep_id, run))

    def close(self) -> None:
        self.store.close()
        self.opened = False

    def _try(self, write: Callable[[], Any]) -> None:
        try:
            if not self.opened:
                self.store.open()
                self.opened = True
            if self._sweep is not None:
                self.store.record_sweep(
                    self.sweep_id,
                    self._sweep["environment"],
                    started_at=self._sweep["started_at"],
                    output_dir=self.output_dir,
                )
                self._sweep = None
            write()
        except MnistbenchError as error:
            if not self.warned:
                self.warned = True
                logger.warning(
                    f"results store not written: {error}; runs.csv keeps every run, add them "
                    f"later with `mnistbench db import {self.output_dir} --db {self.store}`"
                )
