"""The hooks a plugin can implement. This module holds only the markers and the specs.

A plugin is a module (or object) registered under the entry-point group
``mnistbench``. It implements any subset of the hooks below, decorated with
``@mnistbench.hookimpl``. An implementation may accept fewer arguments than the
spec names; mnistbench passes only the ones it asks for, so adding an argument
to a hook never breaks an existing plugin.

Two families of hooks:

- ``mnistbench_register_*``: what a plugin adds, each thing through a ``register``
  callback: architectures, executors (where runs execute), output formats (how
  ``compare`` and ``report`` print) and results stores (where history is kept).
  mnistbench's own executors, formats and stores register through these same hooks.
- the flow of a run: prepare data → build model → count FLOPs → (train and measure,
  done by the core) → record each run → write the report.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mnistbench")


@hookspec
def mnistbench_register_architectures(register):
    """Register the architectures this plugin provides.

    Called once, when plugins are loaded.

    :param register: callback ``register(name, description="")``. ``name`` is
        the architecture's identifier on the command line (lower case letters,
        digits, ``-`` and ``_``); ``description`` is one line shown by
        ``mnistbench plugins``. Registering a name another plugin already
        registered is an error naming both plugins.
    :return: ignored.
    """


@hookspec
def mnistbench_register_executors(register):
    """Register executors: where and how a sweep's runs execute (``run --executor NAME``).

    Called once, when plugins are loaded.

    :param register: callback ``register(executor_class)``. The class subclasses
        :class:`mnistbench.executors.Executor`: its ``name`` is the value of
        ``--executor``, its ``description`` one line for ``--help`` and ``mnistbench
        plugins``, its ``options`` the command-line options only it takes (each an
        :class:`mnistbench.executors.Option`, becoming ``--<name>`` of ``run``). A name
        already registered is an error naming both plugins.
    :return: ignored.
    """


@hookspec
def mnistbench_register_output_formats(register):
    """Register output formats: how ``compare``, ``report`` and ``ab`` print (``--format NAME``).

    Called once, when plugins are loaded.

    :param register: callback ``register(output_format)``. The object has a ``name`` (the
        value of ``--format``), a ``description``, and the methods of
        :class:`mnistbench.outputs.OutputFormat`: each renders one digest (a
        comparison, a sweep's headline table) to the command's output. A name already
        registered is an error naming both plugins.
    :return: ignored.
    """


@hookspec
def mnistbench_register_stores(register):
    """Register results stores: where ``--db URL`` keeps every sweep's runs for ``history``.

    Called once, when plugins are loaded.

    :param register: callback ``register(store_class)``. The class subclasses
        :class:`mnistbench.stores.Store`: its ``schemes`` are the URL schemes it opens
        (``sqlite``, ``postgresql``), its ``description`` one line for ``mnistbench
        plugins``; it makes the SQLAlchemy engine, takes the migration lock and explains a
        connection error in one line. A scheme already registered is an error naming both
        plugins.
    :return: ignored.
    """


@hookspec(firstresult=True)
def mnistbench_prepare_data(architecture, x, split):
    """Turn raw MNIST images into the array one architecture trains on.

    Called once per run and split, before the model is built. Stops at the
    first non-None result. Return None for architectures you do not handle;
    when every plugin returns None the core uses ``x / 255`` as float32 of
    shape (N, 28, 28).

    :param architecture: the registered architecture name.
    :param x: uint8 array of shape (N, 28, 28), pixel values 0–255.
    :param split: ``"train"`` or ``"test"``.
    :return: a numpy array with N rows, or None.
    """


@hookspec(firstresult=True)
def mnistbench_build_model(architecture, input_shape, num_classes):
    """Build and compile the Keras model of one architecture.

    Called once per run, after data preparation. Stops at the first non-None
    result. Return None for architectures you do not handle. Import keras
    inside the implementation, not at module level: ``mnistbench --help`` and
    other backends must not pay for it.

    :param architecture: the registered architecture name.
    :param input_shape: shape of one prepared sample, e.g. ``(28, 28)``.
    :param num_classes: number of labels (10 for MNIST); labels are integers,
        so compile with ``sparse_categorical_crossentropy``.
    :return: a compiled ``keras.Model`` whose output is (batch, num_classes)
        class probabilities, or None.
    """


@hookspec(firstresult=True)
def mnistbench_model_flops(architecture, model):
    """The analytic cost of one sample through a model, for layers the core cannot count.

    Called once per run after the model is built. Stops at the first non-None
    result. Return None to let the core count Dense, Conv2D, LSTM, pooling and
    the other layers it knows.

    :param architecture: the registered architecture name.
    :param model: the built ``keras.Model``.
    :return: ``(inference_flops_per_sample, train_flops_per_sample)``, each a
        number of floating-point operations (a multiply-add counts as 2), or None.
    """


@hookspec
def mnistbench_record_run(row, output_dir, run):
    """Receive one finished run, as soon as it is written to ``runs.csv``.

    Called for every run, failed ones included, in the order they finish.
    Use it to log results to an experiment tracker. The core has already
    written the run to disk, so an error here loses nothing.

    :param row: dict of the run's fields by ``runs.csv`` column (docs/columns.md), as
        Python values: text, numbers, True/False, tuples; None where not measured.
    :param output_dir: ``pathlib.Path`` of the run directory.
    :param run: the same run as its typed record, :class:`mnistbench.record.Run`.
    :return: ignored.
    """


@hookspec
def mnistbench_write_report(runs, output_dir, records):
    """Write report files from the runs of one output directory.

    Called after ``mnistbench run`` finishes and by ``mnistbench report DIR``.
    The built-in ``comparison.csv``, figures and ``report.html`` (:mod:`mnistbench.report`)
    and ``pytest-benchmark.json`` (:mod:`mnistbench.outputs.pytest_benchmark`) are
    implementations of this hook; the sweep's ``environment.json`` is in ``output_dir`` for
    reporters that need to say where the runs were measured. Write only inside
    ``output_dir``, and write each file atomically.

    :param runs: ``pandas.DataFrame`` of ``runs.csv``, one row per run, typed
        (:func:`mnistbench.record.frame`: text, floats with NaN where not measured,
        True/False/None, tuples).
    :param output_dir: ``pathlib.Path`` of the run directory.
    :param records: the same runs as typed records (:class:`mnistbench.record.Run`).
    :return: list of ``pathlib.Path`` written, or None.
    """
