"""What to run: one run's configuration, the plan of a sweep, how it executes, and every check
of the options that shape them.

Everything here is plain values and checks; nothing trains, nothing imports Keras. The
CLI parses options into these types and the library raises :class:`ConfigError` with one
line for the user when a value or a combination cannot be run. Which executor runs a
sweep and what its own options mean is the executor's business
(:mod:`mnistbench.executors`); :class:`Execution` only carries them.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mnistbench.data import TEST_SAMPLES, TRAIN_SAMPLES
from mnistbench.errors import ConfigError

#: The batch size of a run that names none; configuration ids leave it unnamed.
DEFAULT_BATCH_SIZE = 32

#: The jit setting's words, on the command line, in sweep files, in labels and in tables:
#: None keeps Keras' own choice ("auto").
JIT_WORDS: dict[bool | None, str] = {None: "auto", True: "on", False: "off"}


def jit_word(jit_compile: bool | None) -> str:
    """``auto``, ``on`` or ``off``."""
    return JIT_WORDS[jit_compile]


def parse_jit(word: str) -> bool | None:
    """The jit setting a word names; ConfigError for another word."""
    for value, known in JIT_WORDS.items():
        if word.strip().lower() == known:
            return value
    raise ConfigError(f"{word!r} is not one of {', '.join(JIT_WORDS.values())}")


@dataclass(frozen=True)
class RunConfig:
    """What to run: one architecture with one set of training options, one repeat."""

    architecture: str
    epochs: int = 5
    batch_size: int = DEFAULT_BATCH_SIZE
    train_limit: int | None = None  # first N training images; None = all of them
    test_limit: int | None = None  # first N test images; None = all of them
    seed: int = 0  # base seed; the run uses seed + repeat
    repeat: int = 0
    steps_per_execution: int = 1
    jit_compile: bool | None = None  # None keeps Keras' "auto"
    target_accuracy: float | None = None  # stop once test accuracy reaches it
    eval_every: int | None = None  # steps between target evaluations; None = each epoch
    backend: str | None = None  # Keras backend; None = the configured one (KERAS_BACKEND)
    # Batch sizes of the inference curve measured after training; () = no curve. Not in
    # config_id: it changes what is measured afterwards, not the training.
    inference_batch_sizes: tuple[int, ...] = ()
    # The run's place in its sweep's order, from 0 (:func:`order`); None outside a sweep.
    position: int | None = None

    def __post_init__(self) -> None:
        # A manifest gives a JSON list; keep a tuple so the config stays hashable.
        object.__setattr__(self, "inference_batch_sizes", tuple(self.inference_batch_sizes))

    @property
    def config_id(self) -> str:
        """The architecture plus its non-default options: repeats of one configuration share it.

        The options are named in a fixed order, batch size, steps per execution, jit:
        ``dnn``, ``dnn-bs128``, ``dnn-bs128-spe32-jiton``. Defaults are not named, so the
        ids of configurations with default options are the same as before each option
        could vary.
        """
        parts = [self.architecture]
        if self.batch_size != DEFAULT_BATCH_SIZE:
            parts.append(f"bs{self.batch_size}")
        if self.steps_per_execution != 1:
            parts.append(f"spe{self.steps_per_execution}")
        if self.jit_compile is not None:
            parts.append(f"jit{jit_word(self.jit_compile)}")
        return "-".join(parts)

    @property
    def run_id(self) -> str:
        backend = f"-{self.backend}" if self.backend else ""
        return f"{self.config_id}{backend}-r{self.repeat}"

    @property
    def round(self) -> int:
        """The run's round: repeat ``r`` of every configuration runs in round ``r``."""
        return self.repeat

    @property
    def run_seed(self) -> int:
        return self.seed + self.repeat

    @property
    def train_samples(self) -> int:
        return self.train_limit or TRAIN_SAMPLES

    @property
    def test_samples(self) -> int:
        return self.test_limit or TEST_SAMPLES

    @property
    def target(self) -> Target | None:
        """The time-to-accuracy target, None when the run has none."""
        if self.target_accuracy is None:
            return None
        return Target(self.target_accuracy, self.eval_every)

    def to_dict(self) -> dict:
        """Plain JSON values, as the manifest saves them; ``RunConfig(**data)`` reads them."""
        data = asdict(self)
        data["inference_batch_sizes"] = list(self.inference_batch_sizes)
        return data


@dataclass(frozen=True)
class Target:
    """A time-to-accuracy target: stop training once test accuracy reaches ``accuracy``.

    ``eval_every`` is the number of training steps between evaluations; None evaluates at
    the end of each epoch.
    """

    accuracy: float
    eval_every: int | None = None


@dataclass(frozen=True)
class Execution:
    """How a sweep's runs execute: which executor, its own options, how long a run may take.

    ``options`` are the executor's own (``{"isolation": "none"}`` for the local one,
    ``{"cpus_per_run": 1}`` for Ray), by option name, as its
    :attr:`mnistbench.executors.Executor.options` declares them; an option not given is
    absent. Saved in the manifest, so that ``--resume`` continues with the same settings.
    ``timeout`` and ``probe`` are every executor's: ``probe=False`` (``--no-probe``) leaves
    out the speed probes around each run, and with them the ``*_normalized`` columns.
    """

    executor: str = "local"
    timeout: float | None = None  # seconds after which a run's worker is stopped
    options: dict[str, Any] = field(default_factory=dict)
    probe: bool = True

    def to_dict(self) -> dict:
        saved = {"executor": self.executor, "timeout": self.timeout, "options": dict(self.options)}
        return saved if self.probe else {**saved, "probe": False}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Execution:
        """Settings saved by :meth:`to_dict`. Manifests written before executors had their
        own options saved them beside ``executor`` and ``timeout``: those become options.
        Beside ``options``, other entries are a newer manifest's settings: ignored."""
        if "options" in saved:
            options = dict(saved["options"] or {})
        else:
            options = {
                key: value
                for key, value in saved.items()
                if key not in ("executor", "timeout", "probe") and value is not None
            }
        executor = saved.get("executor") or "local"
        return cls(executor, saved.get("timeout"), options, probe=saved.get("probe", True))

    def option(self, name: str, default: Any = None) -> Any:
        """The executor option ``name``, or ``default`` when it was not given."""
        value = self.options.get(name)
        return default if value is None else value


def select_architectures(
    requested: Sequence[str], run_all: bool, known: Sequence[str]
) -> list[str]:
    """The architectures to run, in the order given (``--all``: every registered one, sorted)."""
    if requested and run_all:
        raise ConfigError("give architecture names or --all, not both")
    if run_all:
        if not known:
            raise ConfigError("no architectures are registered; see `mnistbench plugins`")
        return sorted(known)
    if not requested:
        raise ConfigError("name at least one architecture, or use --all")
    for name in requested:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            listing = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"unknown architecture {name!r} (known: {listing}){suggestion}")
    return list(dict.fromkeys(requested))


#: How a sweep orders its runs: ``interleaved`` (the default) runs round ``r`` (repeat
#: ``r`` of every configuration) before round ``r + 1``, its configurations in a seeded
#: random order; ``grouped`` runs each configuration's repeats one after another.
ORDERS = ("interleaved", "grouped")


def order(configs: Sequence[RunConfig], how: str = "interleaved", seed: int = 0) -> list[RunConfig]:
    """``configs`` in the order a sweep runs them, each with its ``position``.

    Interleaved rounds spread the machine's drift over every configuration alike, so a
    comparison between configurations of one sweep (TensorFlow against JAX, jit on against
    off) does not absorb it (randomized multiple interleaved trials: Abedi & Brecht,
    ICPE 2017). The order within a round is drawn from ``seed`` and the round, so the same
    sweep runs in the same order.
    """
    if how not in ORDERS:
        raise ConfigError(f"unknown order {how!r} (known: {', '.join(ORDERS)})")
    if how == "grouped":
        ordered = list(configs)
    else:
        rounds: dict[int, list[RunConfig]] = {}
        for config in configs:
            rounds.setdefault(config.round, []).append(config)
        ordered = []
        for round_ in sorted(rounds):
            members = rounds[round_]
            random.Random(f"{seed}:{round_}").shuffle(members)
            ordered += members
    return [replace(config, position=index) for index, config in enumerate(ordered)]


def plan(
    architectures: Sequence[str],
    *,
    epochs: int = 5,
    batch_size: int | Sequence[int] = DEFAULT_BATCH_SIZE,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
    repeats: int = 1,
    steps_per_execution: Sequence[int] = (1,),
    jit_compile: Sequence[bool | None] = (None,),
    target_accuracy: float | None = None,
    eval_every: int | None = None,
    backends: Sequence[str | None] = (None,),
    inference_batch_sizes: Sequence[int] = (),
    order_by: str = "interleaved",
) -> list[RunConfig]:
    """Every run of a sweep: architectures × backends × batch sizes × steps-per-execution ×
    jit × repeats, in the order they run (:func:`order`: ``order_by`` and ``seed``).

    ``batch_size``, ``steps_per_execution``, ``jit_compile`` and ``backends`` are grids
    (one value or a list); a value given twice runs once. Checks each option's range, the
    limits against the dataset's size and the option combinations; raises
    :class:`ConfigError` naming the option. ``inference_batch_sizes`` is no grid: every
    run measures its inference curve at each of them, in ascending order.
    """
    batch_sizes = [batch_size] if isinstance(batch_size, int) else list(batch_size)
    for option, value in (("--epochs", epochs), *(("--batch-size", size) for size in batch_sizes)):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    if seed < 0:
        raise ConfigError(f"--seed must be at least 0, got {seed}")
    if train_limit is not None and not 1 <= train_limit <= TRAIN_SAMPLES:
        raise ConfigError(f"--train-limit must be between 1 and {TRAIN_SAMPLES}, got {train_limit}")
    if test_limit is not None and not 1 <= test_limit <= TEST_SAMPLES:
        raise ConfigError(f"--test-limit must be between 1 and {TEST_SAMPLES}, got {test_limit}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if any(value < 1 for value in steps_per_execution):
        raise ConfigError("--steps-per-execution: every value must be at least 1")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ConfigError(f"--target-accuracy must be in (0, 1], got {target_accuracy}")
    if eval_every is not None and eval_every < 1:
        raise ConfigError(f"--eval-every must be at least 1, got {eval_every}")
    if eval_every is not None and target_accuracy is None:
        raise ConfigError("--eval-every needs --target-accuracy")
    if any(value < 1 for value in inference_batch_sizes):
        raise ConfigError("--inference-batch-sizes: every value must be at least 1")
    curve_sizes = tuple(sorted(set(inference_batch_sizes)))
    configs = [
        RunConfig(
            architecture=name,
            epochs=epochs,
            batch_size=size,
            train_limit=train_limit,
            test_limit=test_limit,
            seed=seed,
            repeat=repeat,
            steps_per_execution=spe,
            jit_compile=jit,
            target_accuracy=target_accuracy,
            eval_every=eval_every,
            backend=backend,
            inference_batch_sizes=curve_sizes,
        )
        for name in architectures
        for backend in dict.fromkeys(backends)
        for size in dict.fromkeys(batch_sizes)
        for spe in dict.fromkeys(steps_per_execution)
        for jit in dict.fromkeys(jit_compile)
        for repeat in range(repeats)
    ]
    return order(configs, order_by, seed)
