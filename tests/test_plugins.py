"""The plugin system: discovery, filtering, failure isolation, hook contracts."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import numpy as np
import pytest

import mnistbench
from mnistbench import builtins, hookspecs
from mnistbench.errors import ConfigError, PluginError
from mnistbench.executors import Executor
from mnistbench.outputs import OutputFormat
from mnistbench.plugins import BLOCK_ENV, PLUGINS_ENV, STRICT_ENV, load_plugins
from mnistbench.record import new_run

ROOT = Path(__file__).resolve().parent.parent


class Registers:
    """A test plugin registering the given architecture names."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        for name in self.names:
            register(name, description=f"test architecture {name}")


@pytest.fixture(autouse=True)
def clean_plugin_env(monkeypatch):
    for variable in (PLUGINS_ENV, BLOCK_ENV, STRICT_ENV):
        monkeypatch.delenv(variable, raising=False)


def test_reference_architectures_are_found_through_entry_points():
    plugins = load_plugins()
    assert {"dnn", "rnn", "cnn"} <= set(plugins.architectures)
    for name in ("dnn", "rnn", "cnn"):
        arch = plugins.architectures[name]
        assert arch.plugin == name
        assert arch.distribution == "mnistbench"
        assert arch.version == mnistbench.__version__
        assert arch.description


def test_empty_plugins_variable_loads_no_plugins(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "")
    assert load_plugins().architectures == {}


def test_plugins_variable_restricts_to_the_named_plugins(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "dnn,cnn")
    assert set(load_plugins().architectures) == {"dnn", "cnn"}


def test_block_variable_excludes_a_plugin(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "rnn")
    architectures = load_plugins().architectures
    assert "rnn" not in architectures
    assert {"dnn", "cnn"} <= set(architectures)


def test_plugin_raising_in_register_fails_alone(caplog):
    class Broken:
        @mnistbench.hookimpl
        def mnistbench_register_architectures(self, register):
            raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        plugins = load_plugins(entry_points=False, extra=[Broken(), Registers("good")])
    assert list(plugins.architectures) == ["good"]
    assert "failed in mnistbench_register_architectures: RuntimeError: boom" in caplog.text


def test_plugin_raising_in_register_is_fatal_in_strict_mode():
    class Broken:
        @mnistbench.hookimpl
        def mnistbench_register_architectures(self, register):
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match="RuntimeError: boom"):
        load_plugins(entry_points=False, extra=[Broken()], strict=True)


def test_duplicate_architecture_names_both_plugins():
    with pytest.raises(PluginError) as error:
        load_plugins(entry_points=False, extra=[Registers("same"), Registers("same")])
    message = str(error.value)
    assert "architecture 'same' is registered twice" in message
    assert message.count("plugin '") == 2


def test_invalid_architecture_name_fails_that_plugin_alone(caplog):
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        plugins = load_plugins(entry_points=False, extra=[Registers("Bad Name"), Registers("ok")])
    assert list(plugins.architectures) == ["ok"]
    assert "registered an invalid architecture name 'Bad Name'" in caplog.text


def test_invalid_architecture_name_is_fatal_in_strict_mode():
    with pytest.raises(PluginError, match="invalid architecture name 'Bad Name'"):
        load_plugins(entry_points=False, extra=[Registers("Bad Name")], strict=True)


def test_plugin_with_a_misspelled_hook_fails_alone(tmp_path, monkeypatch, caplog):
    (tmp_path / "misspelled.py").write_text(
        "import mnistbench\n\n@mnistbench.hookimpl\ndef mnistbench_buld_model(architecture):\n"
        "    return None\n"
    )
    dist_info = tmp_path / "misspelled-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: misspelled\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[mnistbench]\nmisspelled = misspelled\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        plugins = load_plugins()
    assert {"dnn", "rnn", "cnn"} <= set(plugins.architectures)
    assert "plugin 'misspelled' failed to load: PluginValidationError" in caplog.text
    assert plugins.pm.get_plugin("misspelled") is None


def test_prepare_data_defaults_to_scaled_float32_when_no_plugin_answers():
    plugins = load_plugins(entry_points=False, extra=[Registers("plain")])
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    prepared = plugins.prepare_data("plain", x, "train")
    assert prepared.dtype == np.float32
    np.testing.assert_allclose(prepared, [[[0.0, 1.0], [0.2, 0.4]]], rtol=1e-6)


def test_prepare_data_with_wrong_row_count_names_the_plugin():
    class Short(Registers):
        @mnistbench.hookimpl
        def mnistbench_prepare_data(self, architecture, x):
            return x[:1]

    plugins = load_plugins(entry_points=False, extra=[Short("short")])
    with pytest.raises(PluginError, match=r"returned ndarray from mnistbench_prepare_data.*3 rows"):
        plugins.prepare_data("short", np.zeros((3, 28, 28), np.uint8), "train")


def test_build_model_with_no_answer_is_an_error():
    plugins = load_plugins(entry_points=False, extra=[Registers("nomodel")])
    with pytest.raises(PluginError, match="no plugin built a model for architecture 'nomodel'"):
        plugins.build_model("nomodel", (28, 28), 10)


def test_build_model_returning_a_non_model_names_the_plugin():
    class NotAModel(Registers):
        @mnistbench.hookimpl
        def mnistbench_build_model(self, architecture):
            return "a string"

    plugins = load_plugins(entry_points=False, extra=[NotAModel("odd")])
    with pytest.raises(PluginError, match="returned str from mnistbench_build_model for 'odd'"):
        plugins.build_model("odd", (28, 28), 10)


def test_build_model_error_in_one_plugin_does_not_hide_another_answer(caplog):
    class Raises:
        @mnistbench.hookimpl
        def mnistbench_build_model(self, architecture):
            raise ValueError("not mine")

    plugins = load_plugins(entry_points=True, extra=[Raises()])
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        model = plugins.build_model("dnn", (28, 28), 10)
    assert model.name == "dnn"
    assert "failed in mnistbench_build_model: ValueError: not mine" in caplog.text


RUN = new_run(run_id="x-r0", config_id="x", architecture="x", status="ok", fit_seconds=2.5)


def test_reporter_that_raises_fails_alone(tmp_path, caplog):
    class BadReporter:
        @mnistbench.hookimpl
        def mnistbench_record_run(self, row):
            raise OSError("tracker offline")

    plugins = load_plugins(entry_points=False, extra=[BadReporter()])
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        plugins.record_run(RUN, tmp_path)
    assert "failed in mnistbench_record_run: OSError: tracker offline" in caplog.text


def test_a_recorder_gets_the_run_as_a_dict_and_as_its_record(tmp_path):
    heard = []

    class Tracker:
        @mnistbench.hookimpl
        def mnistbench_record_run(self, row, output_dir, run):
            heard.append((row, output_dir, run))

    load_plugins(entry_points=False, extra=[Tracker()]).record_run(RUN, tmp_path)
    ((row, output_dir, run),) = heard
    assert run is RUN and output_dir == tmp_path
    assert row == RUN.values() and row["fit_seconds"] == 2.5 and row["epochs"] is None


# Executors, output formats and stores: registrations like architectures.


class _Quick(Executor):
    name = "quick"

    def run(self, recorder):
        raise NotImplementedError


class _Plain(OutputFormat):
    name = "plain"


class Extras:
    """Registers one executor and one output format, as a third party's plugin would."""

    def __init__(self, executor=_Quick, output_format=None) -> None:
        self.executor_class = executor
        self.output_format = output_format or _Plain()

    @mnistbench.hookimpl
    def mnistbench_register_executors(self, register):
        register(self.executor_class)

    @mnistbench.hookimpl
    def mnistbench_register_output_formats(self, register):
        register(self.output_format)


def test_mnistbench_registers_its_own_executors_and_formats_through_the_hooks():
    plugins = builtins.load_plugins(entry_points=False)
    assert set(plugins.executors) == {"local", "ray"}
    assert set(plugins.formats) == {"text", "markdown", "json"}
    assert plugins.executors["ray"].plugin == "mnistbench.executors.ray"
    assert plugins.formats["markdown"].plugin == "mnistbench.outputs.markdown"


def test_mnistbench_s_own_plugins_stay_on_when_plugins_are_restricted(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "")
    plugins = builtins.load_plugins()
    assert plugins.architectures == {}
    assert {"local", "ray"} <= set(plugins.executors) and "text" in plugins.formats


def test_a_plugins_executor_and_format_are_found_by_name():
    plugins = builtins.load_plugins(entry_points=False, extra=[Extras()])
    assert plugins.executor("quick") is _Quick
    assert plugins.output_format("plain").name == "plain"
    assert plugins.executors["quick"].plugin == "Extras"


def test_an_unknown_executor_or_format_is_one_line_naming_the_known_ones():
    plugins = builtins.load_plugins(entry_points=False)
    with pytest.raises(ConfigError, match=r"^unknown executor 'dask' \(known: local, ray\)$"):
        plugins.executor("dask")
    with pytest.raises(
        ConfigError, match=r"^unknown output format 'xml' \(known: json, markdown, text\)$"
    ):
        plugins.output_format("xml")


def test_an_executor_registered_twice_names_both_plugins():
    class Local(_Quick):
        name = "local"

    with pytest.raises(PluginError) as error:
        builtins.load_plugins(entry_points=False, extra=[Extras(Local)])
    message = str(error.value)
    assert "executor 'local' is registered twice" in message
    assert "'mnistbench.executors.local'" in message and "'Extras'" in message


def test_an_executor_without_a_valid_name_fails_its_plugin_alone(caplog):
    class Nameless(_Quick):
        name = "Not A Name"

    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        plugins = builtins.load_plugins(entry_points=False, extra=[Extras(Nameless)])
    assert "Not A Name" not in plugins.executors
    assert "registered executor" in caplog.text and "without a valid name" in caplog.text


# The seed architectures, layer by layer and by exact parameter count.


def _layers(model):
    return [
        (type(layer).__name__, getattr(layer, "units", None) or getattr(layer, "filters", None))
        for layer in model.layers
    ]


def test_dnn_matches_the_tutorial():
    model = load_plugins().build_model("dnn", (28, 28), 10)
    assert _layers(model) == [("Flatten", None), ("Dense", 128), ("Dense", 128), ("Dense", 10)]
    assert model.count_params() == (784 * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)


def test_rnn_matches_the_tutorial():
    model = load_plugins().build_model("rnn", (28, 28), 10)
    assert _layers(model) == [
        ("LSTM", 128),
        ("Dropout", None),
        ("LSTM", 128),
        ("Dropout", None),
        ("Dense", 32),
        ("Dropout", None),
        ("Dense", 10),
    ]
    assert [layer.rate for layer in model.layers if hasattr(layer, "rate")] == [0.2, 0.2, 0.2]
    assert model.layers[0].return_sequences and not model.layers[2].return_sequences
    lstm = lambda inputs: 4 * (128 * (inputs + 128) + 128)  # noqa: E731
    assert model.count_params() == lstm(28) + lstm(128) + (128 * 32 + 32) + (32 * 10 + 10)


def test_cnn_matches_the_tutorial():
    plugins = load_plugins()
    prepared = plugins.prepare_data("cnn", np.zeros((2, 28, 28), np.uint8), "train")
    assert prepared.shape == (2, 28, 28, 1) and prepared.dtype == np.float32
    model = plugins.build_model("cnn", prepared.shape[1:], 10)
    assert _layers(model) == [
        ("Conv2D", 32),
        ("MaxPooling2D", None),
        ("Flatten", None),
        ("Dense", 100),
        ("Dense", 10),
    ]
    assert model.layers[0].activation.__name__ == "linear"
    assert model.count_params() == (32 * 9 + 32) + (13 * 13 * 32 * 100 + 100) + (100 * 10 + 10)


@pytest.mark.parametrize("name", ["dnn", "rnn", "cnn"])
def test_seed_models_compile_as_the_tutorial(name):
    model = load_plugins().build_model(name, (28, 28, 1) if name == "cnn" else (28, 28), 10)
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("name", ["dnn", "rnn"])
def test_seed_data_preparation_is_l2_normalisation_along_axis_1(name):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    prepared = load_plugins().prepare_data(name, x, "train")
    norms = np.linalg.norm(prepared, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)


# Hooks are a documented public API: every hook documented in its docstring and docs/hooks.md.


HOOKS = [name for name in dir(hookspecs) if name.startswith("mnistbench_")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_documents_each_parameter_and_its_return(hook):
    function = getattr(hookspecs, hook)
    doc = inspect.getdoc(function)
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc
    assert ":return:" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_appears_in_the_hooks_page_with_its_exact_signature(hook):
    page = (ROOT / "docs" / "hooks.md").read_text()
    arguments = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert re.search(rf"`{hook}\({re.escape(arguments)}\)`", page), f"{hook}({arguments})"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_implemented_by_a_test_plugin(hook):
    # A hook nothing implements in the tests is a hook nothing tests.
    sources = [path.read_text() for path in (ROOT / "tests").rglob("*.py")]
    assert any(re.search(rf"def {hook}\(", source) for source in sources), hook
