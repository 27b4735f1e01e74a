"""What to run: run configurations and their ids, the plan's option checks, the jit words, and
how a sweep's execution settings are saved and read back."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from synthetic_runs import run_row

from mnistbench import record
from mnistbench.cli import cli
from mnistbench.cli.run import run
from mnistbench.compare import NO_CHANGE, compare_runs
from mnistbench.errors import ConfigError
from mnistbench.plan import (
    DEFAULT_BATCH_SIZE,
    JIT_WORDS,
    Execution,
    RunConfig,
    Target,
    jit_word,
    parse_jit,
    plan,
    select_architectures,
)

# --- RunConfig: ids, seeds, sample counts, target ------------------------------------------


def test_default_configuration_id_is_the_architecture():
    assert RunConfig("cnn").config_id == "cnn"


def test_run_ids_name_configuration_and_repeat():
    configs = plan(
        ["dnn"], repeats=2, steps_per_execution=[1, 32], jit_compile=[False], order_by="grouped"
    )
    assert [c.run_id for c in configs] == [
        "dnn-jitoff-r0",
        "dnn-jitoff-r1",
        "dnn-spe32-jitoff-r0",
        "dnn-spe32-jitoff-r1",
    ]
    assert [c.run_seed for c in configs] == [0, 1, 0, 1]


def test_jit_on_is_named_in_the_configuration_id():
    assert RunConfig("dnn", jit_compile=True, steps_per_execution=4).config_id == "dnn-spe4-jiton"


def test_run_id_names_the_backend_when_one_is_given():
    assert RunConfig("dnn", backend="jax", repeat=2).run_id == "dnn-jax-r2"


def test_run_seed_is_the_seed_plus_the_repeat():
    assert RunConfig("dnn", seed=7, repeat=3).run_seed == 10


def test_sample_counts_are_the_limits():
    config = RunConfig("dnn", train_limit=500, test_limit=100)
    assert (config.train_samples, config.test_samples) == (500, 100)


def test_sample_counts_without_limits_are_the_whole_dataset():
    assert (RunConfig("dnn").train_samples, RunConfig("dnn").test_samples) == (60_000, 10_000)


def test_target_holds_the_accuracy_and_evaluation_interval():
    assert RunConfig("dnn", target_accuracy=0.9, eval_every=50).target == Target(0.9, 50)


def test_no_target_accuracy_is_no_target():
    assert RunConfig("dnn").target is None


# --- plan: the grid and its order ----------------------------------------------------------


def test_plan_orders_architectures_then_backends_then_options_then_repeats():
    configs = plan(["cnn", "dnn"], repeats=2, backends=["tensorflow", "jax"], order_by="grouped")
    assert [c.run_id for c in configs] == [
        "cnn-tensorflow-r0",
        "cnn-tensorflow-r1",
        "cnn-jax-r0",
        "cnn-jax-r1",
        "dnn-tensorflow-r0",
        "dnn-tensorflow-r1",
        "dnn-jax-r0",
        "dnn-jax-r1",
    ]


def test_plan_drops_repeated_grid_values():
    configs = plan(["dnn"], steps_per_execution=[4, 4], jit_compile=[True, True])
    assert [c.run_id for c in configs] == ["dnn-spe4-jiton-r0"]


# --- the batch-size grid -------------------------------------------------------------------


def test_a_non_default_batch_size_is_named_in_the_configuration_id():
    assert RunConfig("dnn", batch_size=128).config_id == "dnn-bs128"


def test_the_default_batch_size_is_not_named_so_earlier_ids_stay():
    assert RunConfig("dnn", batch_size=DEFAULT_BATCH_SIZE).config_id == "dnn"
    assert DEFAULT_BATCH_SIZE == 32


def test_batch_size_comes_first_in_the_configuration_id():
    config = RunConfig("dnn", batch_size=256, steps_per_execution=32, jit_compile=True)
    assert config.config_id == "dnn-bs256-spe32-jiton"
    assert RunConfig("dnn", batch_size=8, backend="jax", repeat=1).run_id == "dnn-bs8-jax-r1"


def test_a_batch_size_list_multiplies_into_the_grid_in_order():
    configs = plan(
        ["dnn", "cnn"], batch_size=[32, 128, 512], steps_per_execution=[1, 32], order_by="grouped"
    )
    assert len(configs) == 2 * 3 * 2
    assert [c.run_id for c in configs[:6]] == [
        "dnn-r0",
        "dnn-spe32-r0",
        "dnn-bs128-r0",
        "dnn-bs128-spe32-r0",
        "dnn-bs512-r0",
        "dnn-bs512-spe32-r0",
    ]
    assert [c.batch_size for c in configs[:6]] == [32, 32, 128, 128, 512, 512]


def test_one_batch_size_as_a_number_or_a_list_plans_the_same_runs():
    assert plan(["dnn"], batch_size=64) == plan(["dnn"], batch_size=[64])


def test_plan_drops_a_repeated_batch_size():
    assert [c.run_id for c in plan(["dnn"], batch_size=[64, 64, 32], order_by="grouped")] == [
        "dnn-bs64-r0",
        "dnn-r0",
    ]


def test_plan_refuses_a_batch_size_below_one_in_a_list():
    with pytest.raises(ConfigError) as error:
        plan(["dnn"], batch_size=[32, 0])
    assert str(error.value) == "--batch-size must be at least 1, got 0"


def test_configurations_of_a_batch_size_grid_have_one_label_each():
    configs = plan(["dnn"], batch_size=[32, 128], repeats=2, order_by="grouped")
    runs = [
        record.new_run(
            run_id=c.run_id,
            config_id=c.config_id,
            architecture="dnn",
            backend="tensorflow",
            status="ok",
        )
        for c in configs
    ]
    assert list(record.labels(record.frame(runs))) == ["dnn", "dnn", "dnn-bs128", "dnn-bs128"]


def test_compare_matches_each_batch_size_with_its_own():
    def side(fit_seconds: dict[int, float]):
        return record.frame(
            [
                run_row(
                    "dnn",
                    config.repeat,
                    config_id=config.config_id,
                    batch_size=config.batch_size,
                    fit_seconds=fit_seconds[config.batch_size],
                )
                for config in plan(["dnn"], batch_size=[32, 128], repeats=4, order_by="grouped")
            ]
        )

    baseline = side({32: 30.0, 128: 10.0})
    candidate = side({32: 30.0, 128: 10.0})
    table = compare_runs(baseline, candidate, [])
    fit = table[table["metric"] == "fit_seconds"]
    assert list(fit["config_id"]) == ["dnn", "dnn-bs128"]
    assert list(fit["baseline_median"]) == [30.0, 10.0]
    assert list(fit["different_work"]) == ["", ""]
    assert list(fit["verdict"]) == [NO_CHANGE, NO_CHANGE]


def test_dry_run_lists_one_configuration_per_batch_size():
    argv = ["run", "dnn", "--batch-size", "32,256", "--order", "grouped", "--dry-run"]
    result = CliRunner().invoke(cli, argv)
    assert (result.exit_code, result.stderr) == (0, "")
    assert "mnistbench plan: 2 run(s)" in result.stdout
    runs = [
        line.split()[0] for line in result.stdout.splitlines() if line.strip().startswith("dnn")
    ]
    assert runs == ["dnn-r0", "dnn-bs256-r0"]


def test_a_bad_batch_size_list_is_a_usage_error():
    with pytest.raises(click.BadParameter) as error:
        run.make_context("run", ["dnn", "--batch-size", "32,0", "--dry-run"])
    assert error.value.message == "'32,0': every value must be at least 1"
    assert error.value.exit_code == 2


def test_plan_passes_every_option_to_each_run():
    (config,) = plan(
        ["dnn"],
        epochs=3,
        batch_size=64,
        train_limit=500,
        test_limit=100,
        seed=5,
        target_accuracy=0.8,
        eval_every=10,
    )
    assert config == RunConfig(
        "dnn",
        epochs=3,
        batch_size=64,
        train_limit=500,
        test_limit=100,
        seed=5,
        target_accuracy=0.8,
        eval_every=10,
        position=0,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "--epochs must be at least 1, got 0"),
        ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
        ({"seed": -1}, "--seed must be at least 0, got -1"),
        ({"train_limit": 0}, "--train-limit must be between 1 and 60000, got 0"),
        ({"train_limit": 60_001}, "--train-limit must be between 1 and 60000, got 60001"),
        ({"test_limit": 10_001}, "--test-limit must be between 1 and 10000, got 10001"),
        ({"repeats": 0}, "--repeats must be at least 1, got 0"),
        ({"steps_per_execution": [1, 0]}, "--steps-per-execution: every value must be at least 1"),
        ({"target_accuracy": 0.0}, "--target-accuracy must be in (0, 1], got 0.0"),
        ({"target_accuracy": 1.5}, "--target-accuracy must be in (0, 1], got 1.5"),
        ({"target_accuracy": 0.9, "eval_every": 0}, "--eval-every must be at least 1, got 0"),
        ({"eval_every": 10}, "--eval-every needs --target-accuracy"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_plan_refuses_an_option_out_of_range_naming_it(options, message):
    with pytest.raises(ConfigError) as error:
        plan(["dnn"], **options)
    assert str(error.value) == message


def test_plan_accepts_the_full_dataset_and_a_target_of_one():
    (config,) = plan(["dnn"], train_limit=60_000, test_limit=10_000, target_accuracy=1.0)
    assert (config.train_samples, config.test_samples, config.target_accuracy) == (
        60_000,
        10_000,
        1.0,
    )


# --- select_architectures ------------------------------------------------------------------


def test_select_all_runs_every_registered_architecture_sorted():
    assert select_architectures([], True, ["rnn", "cnn", "dnn"]) == ["cnn", "dnn", "rnn"]


def test_select_keeps_the_given_order_without_duplicates():
    assert select_architectures(["rnn", "dnn", "rnn"], False, ["cnn", "dnn", "rnn"]) == [
        "rnn",
        "dnn",
    ]


def test_unknown_architecture_without_close_match_lists_the_known_ones():
    with pytest.raises(ConfigError) as error:
        select_architectures(["transformer"], False, ["cnn", "dnn"])
    assert str(error.value) == "unknown architecture 'transformer' (known: cnn, dnn)"


def test_unknown_architecture_suggests_the_close_match():
    with pytest.raises(ConfigError) as error:
        select_architectures(["dnm"], False, ["cnn", "dnn", "rnn"])
    assert (
        str(error.value) == "unknown architecture 'dnm' (known: cnn, dnn, rnn); did you mean 'dnn'?"
    )


def test_names_and_all_together_are_refused():
    with pytest.raises(ConfigError) as error:
        select_architectures(["dnn"], True, ["dnn"])
    assert str(error.value) == "give architecture names or --all, not both"


def test_no_names_and_no_all_asks_for_one():
    with pytest.raises(ConfigError) as error:
        select_architectures([], False, ["dnn"])
    assert str(error.value) == "name at least one architecture, or use --all"


def test_all_without_registered_architectures_points_to_the_plugins_command():
    with pytest.raises(ConfigError) as error:
        select_architectures([], True, [])
    assert str(error.value) == "no architectures are registered; see `mnistbench plugins`"


# --- the jit words ---------------------------------------------------------------------------


def test_each_jit_setting_has_one_word():
    assert [jit_word(value) for value in (None, True, False)] == ["auto", "on", "off"]
    assert JIT_WORDS == {None: "auto", True: "on", False: "off"}


@pytest.mark.parametrize(("word", "value"), [("auto", None), ("on", True), (" OFF ", False)])
def test_a_jit_word_parses_back_to_its_setting(word, value):
    assert parse_jit(word) is value


def test_another_jit_word_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError) as error:
        parse_jit("yes")
    assert str(error.value) == "'yes' is not one of auto, on, off"


# --- Execution: saved in the manifest, read back ---------------------------------------------


def test_an_executors_option_not_given_is_its_default():
    execution = Execution("local", None, {"isolation": "none", "other": None})
    assert execution.option("isolation", "process") == "none"
    assert execution.option("other", "fallback") == "fallback"
    assert execution.option("missing") is None


def test_execution_round_trips_through_its_dict():
    execution = Execution("ray", 30.0, {"ray_address": "ray://head:10001", "cpus_per_run": 2})
    assert execution.to_dict() == {
        "executor": "ray",
        "timeout": 30.0,
        "options": {"ray_address": "ray://head:10001", "cpus_per_run": 2},
    }
    assert Execution.from_dict(execution.to_dict()) == execution


def test_no_probe_is_saved_and_read_back_and_a_manifest_without_it_probes():
    quiet = Execution("local", None, {}, probe=False)
    assert quiet.to_dict()["probe"] is False
    assert Execution.from_dict(quiet.to_dict()) == quiet
    assert "probe" not in Execution().to_dict()  # as manifests before --no-probe
    assert Execution.from_dict(Execution().to_dict()).probe is True


def test_execution_of_a_manifest_older_than_executor_options_reads_them_as_options():
    saved = {
        "executor": "ray",
        "isolation": "process",
        "timeout": 30.0,
        "ray_address": "ray://head:10001",
        "cpus_per_run": None,
    }
    assert Execution.from_dict(saved) == Execution(
        "ray", 30.0, {"isolation": "process", "ray_address": "ray://head:10001"}
    )


def test_execution_from_a_newer_manifest_ignores_unknown_settings():
    saved = {"executor": "local", "timeout": None, "options": {"isolation": "none"},
             "gpus_per_run": 1}  # fmt: skip
    assert Execution.from_dict(saved) == Execution("local", None, {"isolation": "none"})


def test_execution_of_an_empty_manifest_entry_is_the_default():
    assert Execution.from_dict({}) == Execution()


# --- the order of a sweep's runs -----------------------------------------------------------


def test_interleaved_rounds_run_repeat_r_of_every_configuration_before_round_r_plus_1():
    configs = plan(["cnn", "dnn", "rnn"], repeats=3, jit_compile=[None, False], seed=7)
    assert [c.round for c in configs] == [0] * 6 + [1] * 6 + [2] * 6
    for round_ in range(3):
        ids = {c.config_id for c in configs if c.round == round_}
        assert ids == {"cnn", "cnn-jitoff", "dnn", "dnn-jitoff", "rnn", "rnn-jitoff"}
    assert [c.position for c in configs] == list(range(18))


def test_the_order_within_each_round_is_drawn_from_the_seed():
    def order(seed: int) -> list[str]:
        return [c.run_id for c in plan(["cnn", "dnn", "rnn"], repeats=4, seed=seed)]

    assert order(3) == order(3)  # reproducible
    assert len({tuple(order(seed)) for seed in range(6)}) > 1  # and drawn, not fixed
    rounds = [order(3)[i : i + 3] for i in range(0, 12, 3)]
    assert len({tuple(r) for r in rounds}) > 1  # each round drawn anew


def test_grouped_order_keeps_each_configurations_repeats_together():
    configs = plan(["cnn", "dnn"], repeats=2, order_by="grouped")
    assert [c.run_id for c in configs] == ["cnn-r0", "cnn-r1", "dnn-r0", "dnn-r1"]
    assert [c.position for c in configs] == [0, 1, 2, 3]


def test_an_unknown_order_is_refused():
    with pytest.raises(
        ConfigError, match=r"unknown order 'random' \(known: interleaved, grouped\)"
    ):
        plan(["dnn"], order_by="random")
