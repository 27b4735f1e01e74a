"""A third party's executor, output format and results store, installed into a temporary site
by the tests.

Nothing in mnistbench names them: ``serial`` runs each configuration in the ``mnistbench``
process and takes its own option, ``--serial-node NAME``, the node its records name;
``lines`` prints a comparison as one ``config metric verdict`` line per row; ``labdb://NAME``
is the SQLite file ``NAME.sqlite`` in the lab's shared directory, ``$LABDB_DIR``.
"""

import os
from pathlib import Path

import mnistbench
from mnistbench.executors import Executor, Option
from mnistbench.outputs import OutputFormat
from mnistbench.record import utc_now
from mnistbench.stores import StoreError
from mnistbench.stores.sqlite import SQLiteStore
from mnistbench.worker import Placement, known_peak, perform


class SerialExecutor(Executor):
    name = "serial"
    description = "each run in the mnistbench process, recorded under a node name of your choice"
    options = (Option("serial_node", "The node name the records give.", default="serial"),)

    def run(self, recorder):
        node = self.execution.option("serial_node", "serial")
        placement = Placement(self.name, "none", node, 1)
        for index, config in enumerate(recorder.configs):
            started_at = utc_now()
            recorder.started(index)
            outcome = perform(
                config,
                self.mnist,
                self.plugins,
                placement=placement,
                started_at=started_at,
                peaks=known_peak(None),
                on_progress=recorder.on_progress,
            )
            recorder.finished(index, outcome, started_at=started_at, placement=placement)


class LinesFormat(OutputFormat):
    name = "lines"
    description = "one line per configuration and metric"

    def compare(self, digest, out):
        for row in digest.rows:
            out.write(f"{row.config} {row.metric} {row.verdict}\n")


@mnistbench.hookimpl
def mnistbench_register_executors(register):
    register(SerialExecutor)


@mnistbench.hookimpl
def mnistbench_register_output_formats(register):
    register(LinesFormat())


class LabStore(SQLiteStore):
    schemes = ("labdb",)
    description = "NAME.sqlite in the lab's shared directory, $LABDB_DIR (labdb://NAME)"

    def locate(self, url):
        name = url.partition("://")[2].strip("/")
        if not name or "/" in name or "LABDB_DIR" not in os.environ:
            raise StoreError(f"--db {url}: give labdb://NAME, with LABDB_DIR set")
        return Path(os.environ["LABDB_DIR"]) / f"{name}.sqlite"


@mnistbench.hookimpl
def mnistbench_register_stores(register):
    register(LabStore)
