"""manifest.json: the plan of a sweep and each run's state, what --resume reads."""

from __future__ import annotations

import json

import pytest

import mnistbench
from mnistbench.errors import MnistbenchError
from mnistbench.manifest import FORMAT, Manifest
from mnistbench.plan import Execution, RunConfig, plan

CONFIGS = plan(["tiny"], epochs=2, train_limit=300, repeats=2)
OPTIONS = Execution("local", 30.0, {"isolation": "process"}).to_dict()


def saved(directory) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def test_a_new_manifest_plans_every_run_in_order(tmp_path):
    Manifest.create(tmp_path, CONFIGS, OPTIONS)
    data = saved(tmp_path)
    assert (data["format"], data["mnistbench"], data["options"]) == (
        FORMAT,
        mnistbench.__version__,
        OPTIONS,
    )
    assert [(run["run_id"], run["state"]) for run in data["runs"]] == [
        ("tiny-r0", "planned"),
        ("tiny-r1", "planned"),
    ]
    assert data["runs"][1]["config"] == CONFIGS[1].to_dict()


def test_a_plan_with_a_run_twice_is_refused(tmp_path):
    with pytest.raises(MnistbenchError) as error:
        Manifest.create(tmp_path, [CONFIGS[0], CONFIGS[1], CONFIGS[0]], OPTIONS)
    assert str(error.value) == "the sweep plans run(s) twice: tiny-r0"
    assert not (tmp_path / "manifest.json").exists()


def test_a_state_change_is_saved_at_once(tmp_path):
    manifest = Manifest.create(tmp_path, CONFIGS, OPTIONS)
    manifest.set_state("tiny-r0", "running")
    assert [run["state"] for run in saved(tmp_path)["runs"]] == ["running", "planned"]


def test_a_loaded_manifest_is_the_saved_plan_states_and_options(tmp_path):
    created = Manifest.create(tmp_path, CONFIGS, OPTIONS)
    created.set_state("tiny-r0", "ok")
    loaded = Manifest.load(tmp_path)
    assert loaded.configs == CONFIGS
    assert loaded.states == {"tiny-r0": "ok", "tiny-r1": "planned"}
    assert (loaded.options, loaded.created_at) == (OPTIONS, created.created_at)
    assert loaded.order == ["tiny-r0", "tiny-r1"]


def test_a_missing_manifest_says_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(MnistbenchError) as error:
        Manifest.load(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'manifest.json'}: not found; "
        "--resume needs a directory written by `mnistbench run`"
    )


def test_a_manifest_of_another_results_format_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99, "mnistbench": "9.0"}))
    with pytest.raises(MnistbenchError) as error:
        Manifest.load(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'manifest.json'}: written by mnistbench 9.0 in results format 99; "
        f"this mnistbench {mnistbench.__version__} reads format {FORMAT} only: "
        "start a new output directory"
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("{not json", "JSONDecodeError"),
        (json.dumps({"format": FORMAT}), "KeyError"),
        (json.dumps({"format": FORMAT, "runs": [{"run_id": "x", "state": "ok"}]}), "KeyError"),
        (
            json.dumps({"format": FORMAT, "runs": [{"run_id": "x", "state": "ok", "config": {}}]}),
            "TypeError",
        ),
    ],
)
def test_a_corrupt_manifest_is_one_line_naming_it(tmp_path, content, kind):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(MnistbenchError) as error:
        Manifest.load(tmp_path)
    assert str(error.value) == f"{tmp_path / 'manifest.json'}: corrupt manifest ({kind})"


def test_the_manifest_is_rewritten_whole_and_leaves_no_temporary_file(tmp_path):
    manifest = Manifest.create(tmp_path, [RunConfig("tiny")], OPTIONS)
    manifest.set_state("tiny-r0", "failed")
    assert [path.name for path in tmp_path.iterdir()] == ["manifest.json"]
    assert (tmp_path / "manifest.json").read_text().endswith("}\n")
