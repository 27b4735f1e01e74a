"""The precision benchmark: mnistbench as a detector of a 10% regression on this machine.

Usage::

    .venv/bin/python benchmarks/precision.py record --mode sequential --condition quiet --pairs 60
    .venv/bin/python benchmarks/precision.py record --mode duet --condition loaded --pairs 30
    .venv/bin/python benchmarks/precision.py record --mode separate --condition quiet --sweeps 12
    .venv/bin/python benchmarks/precision.py calibrate --burn 200,300,400
    .venv/bin/python benchmarks/precision.py e2e --burn N --trials 5
    .venv/bin/python benchmarks/precision.py analyse            # the README's table

Three ways to tell two versions apart, each measured quiet and under a competing CPU-bound
load on every core (one ``while True: pass`` process per CPU):

- ``sequential``: ``mnistbench ab`` pairs, one run of each side back to back in a seeded
  random order, each side in its own warm worker with all CPUs, without the speed probes
  (``ab``'s default);
- ``duet``: ``mnistbench ab --duet`` pairs, both runs at once, each side pinned to its own
  half of the CPUs with one thread;
- ``separate``: today's way without ``ab``, two separate sweeps of 5 repeats each
  (``mnistbench run --repeats 5``, a fresh worker per run) compared with ``mnistbench
  compare`` (Mann-Whitney U).

``record`` keeps a *pool* of end-to-end measurements of the same code on both sides (A/A)
under ``benchmarks/precision/pool/<mode>-<condition>/``: the sides' ``runs.csv`` (and
``pairs.csv``), so the analysis can be rerun on them. ``analyse`` estimates, by drawing
many trials from each pool:

- the false-alarm rate: an A/A trial whose gated training metric gets a verdict
  (``regressed`` or ``improved``) is a false alarm;
- the detection rate: a 10% slowdown of the head side, *injected* into the A/A pool (the
  head's times multiplied by 1.10, its rates divided), must get ``regressed``.

Each rate comes with a 95% interval from a bootstrap over the pool itself (the pool is a
sample of the machine's behaviour; the trials drawn from it are not independent of each
other). ``e2e`` confirms the recommended mode as a user runs it: ``mnistbench ab`` of a
plugin package at two commits in a temporary git repository, 5 A/A trials (the same
commit on both sides) and 5 A/B trials (the head commit does an N×N matmul per step more,
``calibrate`` finds N for about 10% and states its true size).

The DNN trains 1 epoch on 6,000 images, tests on 1,000 (a sequential pair takes about 6 s
here). ``precision/pool-probed/`` keeps the pools recorded before ``ab`` left the speed
probes out (each run then probed before and after: about 1.5 s more between a pair's two
runs), for comparison; ``analyse`` reads ``precision/pool/``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mnistbench import ab, record
from mnistbench.builtins import load_plugins
from mnistbench.checkouts import Side
from mnistbench.columns import HIGHER, metric
from mnistbench.data import resolve_mnist
from mnistbench.plan import Execution, RunConfig, plan
from mnistbench.stats import ALPHA, mann_whitney_p, paired_ratio
from mnistbench.sweep import Sweep, prepare_output_dir, run_sweep

HERE = Path(__file__).resolve().parent
POOLS = HERE / "precision" / "pool"
RESULTS = HERE / "precision" / "results.json"
MODES = ("sequential", "duet", "separate")
CONDITIONS = ("quiet", "loaded")
#: The DNN's run: 1 epoch on 6,000 training images, 1,000 test images.
SETTINGS = {"epochs": 1, "train_limit": 6000, "test_limit": 1000}
ARCHITECTURE = "dnn"
#: The metrics a gate could watch: the whole fit, its (first and only) epoch, and the
#: median step of its blocks of 20 steps.
GATED = ("fit_seconds", "first_epoch_seconds", "steady_step_ms")
#: The slowdown the detector must find.
EFFECT = 1.10
#: Trials drawn from a pool per estimate, and bootstrap resamples of the pool.
TRIALS = 2000
BOOTSTRAP = 300
#: Pairs per trial of the paired modes; runs a side of the separate mode.
PAIRS_PER_TRIAL = (10, 20, 40)
SEPARATE_REPEATS = 5


@contextlib.contextmanager
def load(condition: str) -> Iterator[None]:
    """A competing CPU-bound load on every CPU while the block runs (``loaded``)."""
    spinners: list[subprocess.Popen] = []
    try:
        if condition == "loaded":
            for _ in range(len(os.sched_getaffinity(0))):
                spinners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            time.sleep(0.5)
        yield
    finally:
        for process in spinners:
            process.kill()
        for process in spinners:
            process.wait()


# --- recording the pools -----------------------------------------------------------------------


def record_pairs(
    mode: str,
    condition: str,
    pairs: int,
    out: Path,
    seed: int,
    architecture: str = ARCHITECTURE,
    settings: dict | None = None,
) -> Path:
    """``pairs`` A/A pairs of ``architecture`` (the DNN at ``SETTINGS`` by default) by
    ``mnistbench ab`` (sequential or duet), this environment on both sides, into ``out``."""
    mnist = resolve_mnist()
    plugins = load_plugins()
    design = ab.Design(pairs=pairs, duet=mode == "duet", seed=seed)
    runners = {
        name: ab.SideRunner(
            Side(name, "this environment", sys.executable),
            mnist.cache_path,
            out / name / "logs",
            design.side_threads(),
        )
        for name in ab.SIDES
    }
    prepare_output_dir(out, force=True)
    configs = plan([architecture], **(settings or SETTINGS), seed=seed)
    with load(condition):
        ab.select(runners, [architecture], False, [None])
        ab.measure(
            runners, configs, design, output_dir=out, mnist=mnist, plugins=plugins, store=None
        )
    return out


def record_separate(condition: str, sweeps: int, out: Path, seed: int) -> Path:
    """``sweeps`` sweeps of the DNN, one after the other, ``--repeats 5`` each with a fresh
    worker per run (``mnistbench run``'s defaults), into ``out/sweep-<k>``."""
    mnist = resolve_mnist()
    plugins = load_plugins()
    out.mkdir(parents=True, exist_ok=True)
    with load(condition):
        for k in range(sweeps):
            directory = prepare_output_dir(out / f"sweep-{k:02d}", force=True)
            configs = plan([ARCHITECTURE], **SETTINGS, seed=seed + 100 * k, repeats=5)
            sweep = Sweep.new(configs, Execution(), directory, plugins)
            run_sweep(sweep, mnist=mnist, plugins=plugins, argv=["precision.py"])
            print(f"{condition} separate: sweep {k + 1}/{sweeps}", file=sys.stderr)
    return out


def prune(pool: Path) -> None:
    """Keep what the analysis reads (runs.csv, pairs.csv, environment.json) and drop the
    rest (figures, pages, logs), so a pool stays small enough to keep in the repository."""
    keep = {"runs.csv", "pairs.csv", "ab.csv", "environment.json", "e2e.json"}
    for path in sorted(pool.rglob("*"), reverse=True):
        if path.is_file() and path.name not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# --- reading the pools ---------------------------------------------------------------------------


def paired_pool(pool: Path, name: str) -> list[tuple[float, float]]:
    """The (base, head) values of ``name`` of every pair of a paired pool (each of its
    ``batch-*`` recordings) whose runs both succeeded and measured it, in the order they
    ran."""
    values = []
    for batch in sorted(pool.glob("batch-*")):
        base = {run.repeat: run for run in record.read(batch / "base")}
        head = {run.repeat: run for run in record.read(batch / "head")}
        for k in sorted(set(base) & set(head)):
            b, h = getattr(base[k], name), getattr(head[k], name)
            if base[k].ok and head[k].ok and b and h:
                values.append((b, h))
    return values


def separate_pool(pool: Path, name: str) -> list[list[float]]:
    """Each sweep's values of ``name``, sweeps in the order they ran."""
    sweeps = []
    for directory in sorted(pool.glob("sweep-*")):
        values = [getattr(run, name) for run in record.read(directory) if run.ok]
        sweeps.append([v for v in values if v])
    return [values for values in sweeps if values]


def _slowed(value: float, name: str) -> float:
    """``value`` of ``name`` as a 10% slower code would measure it."""
    return value / EFFECT if metric(name).better == HIGHER else value * EFFECT


# --- the analysis ----------------------------------------------------------------------------


def centred(pairs: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """``pairs`` with the pool's mean log-ratio taken out of every head value: the null
    imposed. Resampling trials from an uncentred pool would carry the pool's own sampling
    error into every trial, so the false-alarm rate of trials of about the pool's size would
    be inflated by chance alone (Efron & Tibshirani, "An Introduction to the Bootstrap",
    §16.2: a bootstrap test resamples from a distribution that obeys the null). A real
    systematic A/A difference is reported beside the rates instead (``bias``)."""
    shift = statistics.fmean(math.log(h / b) for b, h in pairs)
    return [(b, h / math.exp(shift)) for b, h in pairs]


def bias(pairs: Sequence[tuple[float, float]]) -> dict:
    """The pool's A/A ratio head/base with its 95% paired t interval: a systematic difference
    between two sides running the same code (a CPU, a position in the pair) shows here."""
    estimate = paired_ratio([b for b, _ in pairs], [h for _, h in pairs])
    return {"ratio": estimate.ratio, "low": estimate.low, "high": estimate.high}


def paired_rates(pairs: Sequence[tuple[float, float]], n: int, name: str, rng) -> dict:
    """False-alarm and detection rates of trials of ``n`` pairs drawn from the centred
    ``pairs``, each with a bootstrap interval over the pool."""

    def rates(pool: Sequence[tuple[float, float]], count: int) -> tuple[float, float]:
        pool = centred(pool)
        alarms = detections = 0
        for _ in range(count):
            trial = [pool[rng.randrange(len(pool))] for _ in range(n)]
            base = [b for b, _ in trial]
            head = [h for _, h in trial]
            alarms += paired_ratio(base, head).p_value < ALPHA
            slow = paired_ratio(base, [_slowed(h, name) for h in head])
            worse = slow.ratio < 1 if metric(name).better == HIGHER else slow.ratio > 1
            detections += slow.p_value < ALPHA and worse
        return alarms / count, detections / count

    estimate = rates(pairs, TRIALS)
    resampled = [
        rates([pairs[rng.randrange(len(pairs))] for _ in range(len(pairs))], TRIALS // 10)
        for _ in range(BOOTSTRAP // 10)
    ]
    return _rates(n, estimate, resampled)


def separate_rates(sweeps: Sequence[list[float]], name: str, rng) -> dict:
    """False-alarm and detection rates of ``compare`` between two separate sweeps: every
    pair of distinct sweeps (an earlier baseline against a later candidate), Mann-Whitney U
    on their runs, as compare tests them; intervals by a bootstrap over the sweeps."""

    def rates(pool: Sequence[list[float]]) -> tuple[float, float]:
        alarms = detections = trials = 0
        for first, second in itertools.combinations(range(len(pool)), 2):
            base, cand = pool[first], pool[second]
            trials += 1
            alarms += mann_whitney_p(base, cand) < ALPHA
            slowed = [_slowed(v, name) for v in cand]
            worse = (
                statistics.median(slowed) < statistics.median(base)
                if metric(name).better == HIGHER
                else statistics.median(slowed) > statistics.median(base)
            )
            detections += mann_whitney_p(base, slowed) < ALPHA and worse
        return alarms / max(trials, 1), detections / max(trials, 1)

    estimate = rates(sweeps)
    resampled = [
        rates([sweeps[rng.randrange(len(sweeps))] for _ in range(len(sweeps))])
        for _ in range(BOOTSTRAP // 10)
    ]
    return _rates(SEPARATE_REPEATS, estimate, resampled)


def _rates(n: int, estimate: tuple[float, float], resampled: Sequence[tuple[float, float]]) -> dict:
    """A trial size's false-alarm and detection rates, each with its bootstrap interval."""
    return {
        "n": n,
        "false_alarms": estimate[0],
        "false_alarms_interval": _interval([r[0] for r in resampled]),
        "detection": estimate[1],
        "detection_interval": _interval([r[1] for r in resampled]),
    }


def _interval(values: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values)
    low = ordered[int(0.025 * (len(ordered) - 1))]
    high = ordered[int(math.ceil(0.975 * (len(ordered) - 1)))]
    return low, high


def spread(pairs: Sequence[tuple[float, float]]) -> float:
    """The sd of the pairs' log-ratios: what a paired design's precision rests on."""
    logs = [math.log(h / b) for b, h in pairs]
    return statistics.stdev(logs) if len(logs) > 1 else math.nan


def analyse(seed: int = 0) -> dict:
    """Every pool's rates, per gated metric; written to ``results.json`` (``--table`` reads
    it back without recomputing)."""
    rng = random.Random(seed)
    results: dict = {}
    for mode, condition in itertools.product(MODES, CONDITIONS):
        pool = POOLS / f"{mode}-{condition}"
        if not pool.is_dir():
            continue
        entry: dict = {"mode": mode, "condition": condition, "metrics": {}}
        for name in GATED:
            if mode == "separate":
                sweeps = separate_pool(pool, name)
                if len(sweeps) < 2:
                    continue
                within = [statistics.stdev([math.log(v) for v in s]) for s in sweeps if len(s) > 1]
                entry["runs"] = sum(len(s) for s in sweeps)
                entry["metrics"][name] = {
                    "sd_log_within_sweep": statistics.median(within),
                    "trials": [separate_rates(sweeps, name, rng)],
                }
            else:
                pairs = paired_pool(pool, name)
                if len(pairs) < 2:
                    continue
                entry["pairs"] = len(pairs)
                entry["metrics"][name] = {
                    "sd_log_ratio": spread(pairs),
                    "median_ratio": statistics.median(h / b for b, h in pairs),
                    "bias": bias(pairs),
                    "trials": [paired_rates(pairs, n, name, rng) for n in PAIRS_PER_TRIAL],
                }
        results[f"{mode}-{condition}"] = entry
    # The other architectures' smaller pools (``record --architecture``): their spreads and
    # rates, beside the DNN's.
    for pool in sorted(POOLS.glob("*-*-*")):
        mode, condition, architecture = pool.name.split("-", 2)
        entry = {"mode": mode, "condition": condition, "architecture": architecture}
        entry["metrics"] = {}
        for name in GATED:
            pairs = paired_pool(pool, name)
            if len(pairs) < 2:
                continue
            entry["pairs"] = len(pairs)
            entry["train_samples"] = next(
                run.train_samples
                for b in sorted(pool.glob("batch-*"))
                for run in record.read(b / "base")
            )
            entry["metrics"][name] = {
                "sd_log_ratio": spread(pairs),
                "median_ratio": statistics.median(h / b for b, h in pairs),
                "bias": bias(pairs),
                "trials": [paired_rates(pairs, n, name, rng) for n in PAIRS_PER_TRIAL],
            }
        results[pool.name] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


def table(
    results: dict, metrics: Sequence[str] = GATED, sizes: Sequence[int] = PAIRS_PER_TRIAL
) -> str:
    """The table of the rates: per mode, condition and gated metric (of ``metrics``), the
    spread, the A/A bias and the rates at each trial size (of ``sizes``; separate sweeps
    always at their 5 runs a side). The README shows one trial size; docs/ab.md all."""
    lines = [
        "| mode | condition | pool | metric | spread (sd of log) | A/A ratio | trial | false "
        "alarms (target ≤ 5%) | 10% slowdown found (target ≥ 90%) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def rate(value: float, interval: Sequence[float]) -> str:
        return f"{value:.0%} [{interval[0]:.0%}, {interval[1]:.0%}]"

    for entry in results.values():
        separate = entry["mode"] == "separate"
        size = f"{entry['runs']} runs" if separate else f"{entry['pairs']} pairs"
        if "architecture" in entry:
            size += f" of the {entry['architecture']} on {entry['train_samples']:,} images"
        for name, figures in entry["metrics"].items():
            if name not in metrics:
                continue
            sd = figures.get("sd_log_ratio", figures.get("sd_log_within_sweep"))
            aa = figures.get("bias")
            aa = f"{aa['ratio']:.3f} [{aa['low']:.2f}, {aa['high']:.2f}]" if aa else "–"
            for trial in figures["trials"]:
                if not separate and trial["n"] not in sizes:
                    continue
                unit = "runs a side" if separate else "pairs"
                lines.append(
                    f"| {entry['mode']} | {entry['condition']} | {size} | `{name}` | "
                    f"{sd:.3f} | {aa} | {trial['n']} {unit} | "
                    f"{rate(trial['false_alarms'], trial['false_alarms_interval'])} | "
                    f"{rate(trial['detection'], trial['detection_interval'])} |"
                )
    return "\n".join(lines) + "\n"


def readme_table(results: dict, name: str = "steady_step_ms", pairs: int = 40) -> str:
    """The README's table: each way, quiet and loaded, for one gated metric and trial size:
    the spread, the false alarms and the detections, each with its interval."""
    titles = {
        "separate": "two sweeps, 5 runs a side, `compare`",
        "sequential": f"`ab`, {pairs} pairs back to back",
        "duet": f"`ab --duet`, {pairs} pairs",
    }
    lines = [
        "| way | spread (quiet / loaded) | false alarms, quiet | found, quiet | false alarms, "
        "loaded | found, loaded |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def rate(value: float, interval: Sequence[float]) -> str:
        return f"{value:.0%} [{interval[0]:.0%}–{interval[1]:.0%}]"

    for mode in ("separate", "sequential", "duet"):
        cells, spreads = [], []
        for condition in CONDITIONS:
            figures = results.get(f"{mode}-{condition}", {}).get("metrics", {}).get(name)
            if not figures:
                cells += ["–", "–"]
                spreads.append("–")
                continue
            spreads.append(f"{figures.get('sd_log_ratio', figures.get('sd_log_within_sweep')):.3f}")
            trial = next(t for t in figures["trials"] if mode == "separate" or t["n"] == pairs)
            cells += [
                rate(trial["false_alarms"], trial["false_alarms_interval"]),
                rate(trial["detection"], trial["detection_interval"]),
            ]
        lines.append(f"| {titles[mode]} | {' / '.join(spreads)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


# --- calibrating the slowdown, and the end-to-end trials ----------------------------------------

BURN_PLUGIN = '''\
"""The DNN of the tutorial with an N×N matmul per step more: a known slowdown in code."""

import mnistbench
import mnistbench_dnn

BURN = {burn}


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register("burn-dnn", description=f"dnn with a {{BURN}}x{{BURN}} matmul per step")


@mnistbench.hookimpl
def mnistbench_prepare_data(architecture, x, split):
    if architecture == "burn-dnn":
        return mnistbench_dnn.mnistbench_prepare_data(architecture="dnn", x=x)
    return None


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture != "burn-dnn":
        return None
    import keras
    from keras import ops

    model = mnistbench_dnn.mnistbench_build_model(
        architecture="dnn", input_shape=input_shape, num_classes=num_classes
    )

    class Burn(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(BURN, BURN), initializer="ones", trainable=False)
            self.zero = self.add_weight(shape=(), initializer="zeros", trainable=False)

        def call(self, x):
            return x + ops.cast(ops.mean(ops.matmul(self.w, self.w)) * self.zero, x.dtype)

    burned = keras.Sequential([keras.Input(shape=input_shape), Burn(), *model.layers])
    burned.compile_from_config(model.get_compile_config())
    return burned
'''

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mnistbench-burn"
version = "{version}"

[project.entry-points.mnistbench]
burn = "mnistbench_burn"

[tool.setuptools]
py-modules = ["mnistbench_burn"]
"""


def burn_repository(directory: Path, burn: int) -> dict[str, str]:
    """A git repository of the burn plugin at two commits: ``base`` (a 1×1 matmul per step:
    the same model and graph, no work to speak of) and ``head`` (a ``burn``×``burn`` one);
    their commits."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, check=True, capture_output=True, text=True
        ).stdout.strip()

    directory.mkdir(parents=True, exist_ok=True)
    git("init", "-q")
    git("config", "user.email", "precision@example.com")
    git("config", "user.name", "precision")
    commits = {}
    for name, size, version in (("base", 1, "0.1.0"), ("head", burn, "0.2.0")):
        (directory / "pyproject.toml").write_text(PYPROJECT.format(version=version))
        (directory / "mnistbench_burn.py").write_text(BURN_PLUGIN.format(burn=size))
        git("add", "-A")
        git("commit", "-q", "-m", f"burn {size}")
        commits[name] = git("rev-parse", "HEAD")
    return commits


def e2e(burn: int, trials: int, pairs: int, out: Path, duet: bool = False) -> list[dict]:
    """``trials`` A/A and ``trials`` A/B runs of ``mnistbench ab`` (``--duet`` with
    ``duet``) as a user runs them, in a repository of the burn plugin; the verdicts of the
    gated metrics of each, in ``out/e2e.json``."""
    out = out.resolve()  # ab runs in the repository: a relative path would land there
    repository = out / "repository"
    commits = burn_repository(repository, burn)
    rows = []
    for trial in range(trials):
        for kind, head in (("A/A", commits["base"]), ("A/B", commits["head"])):
            output = out / f"{kind.replace('/', '')}-{trial}"
            command = [
                sys.executable, "-m", "mnistbench.cli", "ab", commits["base"], head, "burn-dnn",
                "--epochs", str(SETTINGS["epochs"]), "--train-limit", str(SETTINGS["train_limit"]),
                "--test-limit", str(SETTINGS["test_limit"]), "--pairs", str(pairs),
                "--seed", str(trial), "--output", str(output), "--force", "--no-db",
                "--format", "json", *(["--duet"] if duet else []),
            ]  # fmt: skip
            started = time.monotonic()
            result = subprocess.run(command, cwd=repository, capture_output=True, text=True)
            if result.returncode not in (0, 1):
                raise RuntimeError(result.stderr[-3000:])
            document = json.loads(result.stdout)
            for row in document["rows"]:
                if row["metric"] in GATED:
                    rows.append(
                        {
                            "kind": kind,
                            "trial": trial,
                            "metric": row["metric"],
                            "ratio": row["ratio"],
                            "low": row["low"],
                            "high": row["high"],
                            "p_value": row["p_value"],
                            "verdict": row["verdict"],
                            "minutes": (time.monotonic() - started) / 60,
                        }
                    )
            print(f"e2e {kind} trial {trial}: {rows[-2:]}", file=sys.stderr)
    (out / "e2e.json").write_text(json.dumps(rows, indent=2) + "\n")
    shutil.rmtree(repository, ignore_errors=True)
    prune(out)
    return rows


def e2e_summary(out: Path) -> str:
    """The end-to-end trials in Markdown: per kind and metric, the verdicts; and the true
    size of the slowdown, from every A/B pair pooled (the ratio with its 95% interval)."""
    rows = json.loads((out / "e2e.json").read_text())
    lines = [
        "| trials | metric | regressed | improved | no significant change | cannot tell | "
        "minutes a trial (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("A/A", "A/B"):
        for name in GATED:
            mine = [row for row in rows if row["kind"] == kind and row["metric"] == name]
            if not mine:
                continue
            counts = {
                prefix: sum(row["verdict"].startswith(prefix) for row in mine)
                for prefix in ("regressed", "improved", "no significant", "cannot tell")
            }
            lines.append(
                f"| {len(mine)} {kind} | `{name}` | {counts['regressed']} | "
                f"{counts['improved']} | {counts['no significant']} | {counts['cannot tell']} | "
                f"{statistics.median(row['minutes'] for row in mine):.1f} |"
            )
    sizes = []
    for name in GATED:
        base, head = [], []
        for directory in sorted(out.glob("AB-*")):
            for run_b, run_h in zip(
                record.read(directory / "base"), record.read(directory / "head"), strict=False
            ):
                b, h = getattr(run_b, name), getattr(run_h, name)
                if run_b.ok and run_h.ok and b and h:
                    base.append(b)
                    head.append(h)
        if base:
            ratio = paired_ratio(base, head)
            sizes.append(
                f"`{name}` ×{ratio.ratio:.3f} [{ratio.low:.3f}, {ratio.high:.3f}] over "
                f"{ratio.n} pairs"
            )
    return (
        "\n".join(lines)
        + "\n\nThe slowdown's true size, all A/B pairs pooled: "
        + ("; ".join(sizes) + ".\n")
    )


def calibrate(burns: Sequence[int], rounds: int) -> dict[int, float]:
    """The slowdown each burn size makes, measured in one process, alternating plain and
    burned DNN runs ``rounds`` times: the median ratio of their fit times."""
    out = Path(tempfile.mkdtemp(prefix="mnistbench-calibrate-"))
    sizes = {}
    for burn in burns:
        site = out / f"site-{burn}"
        site.mkdir()
        (site / "mnistbench_burn.py").write_text(BURN_PLUGIN.format(burn=burn))
        dist = site / "mnistbench_burn-0.1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: mnistbench-burn\nVersion: 0.1.0\n"
        )
        (dist / "entry_points.txt").write_text("[mnistbench]\nburn = mnistbench_burn\n")
        pool = out / f"ab-{burn}"
        runners = {
            name: ab.SideRunner(
                Side(name, "calibration", sys.executable, {"PYTHONPATH": str(site)}),
                resolve_mnist().cache_path,
                pool / name / "logs",
                None,
            )
            for name in ab.SIDES
        }
        # "base" runs dnn, "head" burn-dnn: one configuration each, paired by pair index.
        ratios = []
        try:
            for name in ab.SIDES:
                runners[name].start("tensorflow")
            for k in range(rounds):
                base = runners["base"].run(
                    RunConfig("dnn", **SETTINGS, seed=k), cpus=None, timeout=None
                )
                head = runners["head"].run(
                    RunConfig("burn-dnn", **SETTINGS, seed=k), cpus=None, timeout=None
                )
                ratios.append(head.fit_seconds / base.fit_seconds)
        finally:
            for runner in runners.values():
                runner.stop()
        sizes[burn] = statistics.median(ratios)
        print(
            f"burn {burn}: fit ×{sizes[burn]:.3f} over {rounds} pairs "
            f"{[round(r, 3) for r in ratios]}"
        )
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="add A/A measurements to a pool")
    rec.add_argument("--mode", choices=MODES, required=True)
    rec.add_argument("--condition", choices=CONDITIONS, required=True)
    rec.add_argument("--pairs", type=int, default=30, help="pairs (paired modes)")
    rec.add_argument("--sweeps", type=int, default=12, help="sweeps (separate mode)")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument(
        "--architecture",
        default=ARCHITECTURE,
        help="another architecture (paired modes): its own pool, <mode>-<condition>-<arch>",
    )
    rec.add_argument("--train-limit", type=int, default=SETTINGS["train_limit"])
    rec.add_argument("--test-limit", type=int, default=SETTINGS["test_limit"])
    cal = commands.add_parser("calibrate", help="the slowdown of each burn size")
    cal.add_argument("--burn", default="200,300,400")
    cal.add_argument("--rounds", type=int, default=10)
    end = commands.add_parser("e2e", help="A/A and A/B trials of mnistbench ab")
    end.add_argument("--burn", type=int, required=True)
    end.add_argument("--trials", type=int, default=5)
    end.add_argument("--pairs", type=int, default=10)
    end.add_argument("--out", type=Path, default=HERE / "precision" / "e2e")
    end.add_argument("--duet", action="store_true", help="measure with ab --duet")
    ana = commands.add_parser(
        "analyse", help="the rates of every pool: docs/ab.md's table, then the README's"
    )
    ana.add_argument(
        "--table", action="store_true", help="print the tables of the last results.json"
    )
    args = parser.parse_args(argv)
    if args.command == "record":
        other = args.architecture != ARCHITECTURE
        if other and args.mode == "separate":
            parser.error("--architecture is for the paired modes")
        pool = POOLS / (
            f"{args.mode}-{args.condition}" + (f"-{args.architecture}" if other else "")
        )
        started = time.monotonic()
        if args.mode == "separate":
            record_separate(args.condition, args.sweeps, pool, args.seed)
        else:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            settings = {
                "epochs": 1, "train_limit": args.train_limit, "test_limit": args.test_limit
            }  # fmt: skip
            record_pairs(
                args.mode, args.condition, args.pairs, pool / f"batch-{stamp}", args.seed,
                args.architecture, settings,
            )  # fmt: skip
        prune(pool)
        print(f"recorded into {pool} in {(time.monotonic() - started) / 60:.1f} min")
    elif args.command == "calibrate":
        calibrate([int(b) for b in args.burn.split(",")], args.rounds)
    elif args.command == "e2e":
        e2e(args.burn, args.trials, args.pairs, args.out, args.duet)
        print(e2e_summary(args.out), end="")
    else:
        results = json.loads(RESULTS.read_text()) if args.table else analyse()
        print(table(results), end="")
        print()
        print(readme_table(results), end="")


if __name__ == "__main__":
    main()
