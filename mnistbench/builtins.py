"""mnistbench's own plugins: its executors, output formats, reporters and results stores,
registered through the same hooks as a third party's.

They are always on (restricting plugins with ``MNISTBENCH_PLUGINS`` never loses them) and
registered before the installed plugins. :func:`load_plugins` is what the commands use;
a run's worker needs only the architectures and loads :func:`mnistbench.plugins.load_plugins`
without these.
"""

from __future__ import annotations

from mnistbench import plugins, report
from mnistbench.executors import local, ray
from mnistbench.outputs import benchmark_json, json_output, markdown, text
from mnistbench.stores import postgresql, sqlite

#: In registration order. pluggy calls the last registered first, and report.html's reporter
#: is ``trylast``: pytest-benchmark.json, then third parties' reports, then the core's.
BUILTINS = (local, ray, text, markdown, json_output, benchmark_json, report, sqlite, postgresql)


def load_plugins(**options) -> plugins.Plugins:
    """The installed plugins beside mnistbench's own (:func:`mnistbench.plugins.load_plugins`
    with :data:`BUILTINS`); ``options`` as that function takes them."""
    return plugins.load_plugins(builtins=BUILTINS, **options)
