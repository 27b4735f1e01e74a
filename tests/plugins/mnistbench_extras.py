"""A third party's executor and output format, installed into a temporary site by the tests.

Nothing in mnistbench names them: ``serial`` runs each configuration in the ``mnistbench``
process and takes its own option, ``--serial-node NAME``, the node its records name;
``lines`` prints a comparison as one ``config metric verdict`` line per row.
"""

import mnistbench
from mnistbench.executors import Executor, Option
from mnistbench.outputs import OutputFormat
from mnistbench.record import utc_now
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
