"""Fixtures shared by the test modules: real MNIST, test plugins, the CLI, and sweeps.

Test modules use these as fixtures, never by importing this file. Tests that only read
a sweep's outputs share one (``cli_sweep``, once per session); tests that check how
runs execute run their own, in-process where isolation is not what they test.

``make test`` spreads the test files over pytest-xdist workers (``--dist loadfile``: a
file's tests run on one worker, so a module's shared sweep is made once, and every test
that starts Ray is in one file, so one Ray instance runs at a time). The shared sweep of
``cli_sweep`` is made once for all workers, under a file lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mnistbench.data import resolve_mnist

TESTS = Path(__file__).resolve().parent
FAULTY = TESTS / "plugins" / "mnistbench_faulty.py"

#: The files that take longest (worker seconds in a full run), started first: xdist hands
#: out files in collection order (with ``--no-loadscope-reorder``, as ``make test`` runs
#: it: by default xdist 3.8 re-sorts files by their number of tests, which started the
#: quick many-test files first and left the long ones for the end), so a long file
#: collected last would run alone at the end while the other worker idles. Longest first
#: is the classic greedy schedule (LPT); an unlisted file keeps its place after these.
LONGEST_FIRST = (
    "test_ray_executor.py",
    "test_ab.py",
    "test_serve.py",
    "test_columns.py",  # the first to ask for ``cli_sweep``, made once for all files
    "test_store_faults.py",
    "test_executors.py",
    "test_backend_grid.py",
    "test_resume.py",
    "test_third_party.py",
    "test_benchmarks.py",
    "test_stores.py",
    "test_report_html.py",
    "test_history.py",
    "test_sweepfile.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


@pytest.fixture(scope="session")
def mnist_npz() -> Path:
    """Path to a validated real-MNIST npz, resolved once per test session (mirror or user cache).

    Resolution uses the user's normal cache directory, so the mirror is fetched only in the
    first session on a machine and later sessions read ``~/.cache/mnistbench/mnist.npz``.
    """
    return resolve_mnist().cache_path


@pytest.fixture(scope="session")
def mnist(mnist_npz):
    """Real MNIST, loaded once per session from the validated cache."""
    return resolve_mnist(mnist_npz, offline=True)


def _install_distribution(site: Path, module: Path, distribution: str, entry_points: dict) -> Path:
    shutil.copy(module, site)
    dist_info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[mnistbench]\n{lines}")
    return site


@pytest.fixture(scope="session")
def install_distribution() -> Callable[..., Path]:
    """``install(site, module, distribution, entry_points)``: lay ``module`` out in ``site`` as
    pip would install it, the module plus a ``*.dist-info``; returns ``site``.

    importlib.metadata finds the entry points on sys.path, in this process (with ``site``
    prepended to sys.path) and in worker processes (which inherit sys.path).
    """
    return _install_distribution


@pytest.fixture(scope="session")
def faulty_site(tmp_path_factory) -> Path:
    """A site directory holding the misbehaving test plugin (tests/plugins/mnistbench_faulty.py)
    as an installed distribution; not on sys.path (see ``faulty_plugin``)."""
    site = tmp_path_factory.mktemp("faulty-site")
    return _install_distribution(site, FAULTY, "mnistbench-faulty", {"faulty": "mnistbench_faulty"})


@pytest.fixture
def faulty_plugin(faulty_site, monkeypatch) -> Path:
    """The faulty test plugin on sys.path for one test: its architectures tiny, sleepy, nan."""
    monkeypatch.syspath_prepend(str(faulty_site))
    return faulty_site


@pytest.fixture(scope="session")
def cli(tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """``cli(*args, env=None)``: run the mnistbench command in a fresh process, as a user would.

    Its results database is a session-wide temporary file (``MNISTBENCH_DB``), never the
    repository's ``results/mnistbench.sqlite``, unless ``env`` names another.
    """
    db = tmp_path_factory.mktemp("cli-db") / "mnistbench.sqlite"

    def run(*args: str, env: dict | None = None, timeout: float = 600):
        return subprocess.run(
            [sys.executable, "-m", "mnistbench.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "MNISTBENCH_DB": str(db), **(env or {})},
            timeout=timeout,
        )

    return run


REPO_RESULTS = TESTS.parent / "results"


@pytest.fixture(scope="session", autouse=True)
def _repository_results_untouched(tmp_path_factory):
    """Every process the suite starts records into a temporary results database
    (``MNISTBENCH_DB``), and the session's last test fails when the suite wrote into the
    repository's results/ all the same (a sweep run with the default paths)."""
    previous = os.environ.get("MNISTBENCH_DB")
    os.environ["MNISTBENCH_DB"] = str(tmp_path_factory.mktemp("session-db") / "mnistbench.sqlite")

    def state():
        db = REPO_RESULTS / "mnistbench.sqlite"
        entries = sorted(p.name for p in REPO_RESULTS.iterdir()) if REPO_RESULTS.is_dir() else None
        return entries, db.stat().st_mtime_ns if db.exists() else None

    before = state()
    yield
    if previous is None:
        os.environ.pop("MNISTBENCH_DB", None)
    else:
        os.environ["MNISTBENCH_DB"] = previous
    assert state() == before, f"the test suite wrote into {REPO_RESULTS}"


@pytest.fixture(scope="session")
def sweep_in_process(mnist) -> Callable:
    """``sweep(output_dir, configs, plugins=None, db=None, executor="local", timeout=None,
    probe=False, report=False, on_progress=None, **options)``: run a sweep inside the test
    process (fast, and test plugins need no installing); returns its SweepResult.

    ``options`` are the executor's (``isolation`` defaults to "none" for the local one).
    ``plugins`` defaults to the installed ones beside mnistbench's own, without the figures
    and report.html unless ``report``; ``db`` is the results store to record into, a path
    or URL (none by default, like the library). The speed probes (``probe``) and the
    report are the suite's largest costs after TensorFlow's imports (docs/development.md):
    a test that reads them asks for them.
    """
    from mnistbench import report as report_plugin
    from mnistbench.builtins import BUILTINS
    from mnistbench.plan import Execution
    from mnistbench.plugins import load_plugins
    from mnistbench.stores import open_store
    from mnistbench.sweep import Sweep, prepare_output_dir, run_sweep

    def sweep(
        output_dir: Path,
        configs,
        plugins=None,
        db=None,
        executor: str = "local",
        timeout: float | None = None,
        probe: bool = False,
        report: bool = False,
        on_progress: Callable | None = None,
        **options,
    ):
        if executor == "local":
            options.setdefault("isolation", "none")
        builtins = [module for module in BUILTINS if report or module is not report_plugin]
        plugins = plugins or load_plugins(builtins=builtins)
        prepare_output_dir(output_dir, force=True)
        execution = Execution(executor, timeout, options, probe=probe)
        return run_sweep(
            Sweep.new(configs, execution, output_dir, plugins),
            mnist=mnist,
            plugins=plugins,
            argv=["mnistbench"],
            store=None if db is None else open_store(db, plugins.stores),
            on_progress=on_progress,
        )

    return sweep


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server of this test worker (``tests/postgres.py``), started on first
    use and stopped at the end; the tests that need one skip where there are no server
    binaries, and fail there when ``MNISTBENCH_REQUIRE_POSTGRES`` is set."""
    import postgres

    if postgres.server_binaries() is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
        if postgres.required():
            pytest.fail(f"{reason}, and {postgres.REQUIRE} is set")
        pytest.skip(reason)
    server = postgres.start_server()
    yield server
    postgres.remove(server)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty database on this worker's PostgreSQL server."""
    return postgres_server.url(postgres_server.create_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A new, empty results store: an SQLite file's path, then a PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def tiny_plugins():
    """mnistbench's own plugins and the tiny test plugin (``helpers.Tiny``), no installed ones."""
    from helpers import Tiny

    from mnistbench.builtins import load_plugins

    return load_plugins(extra=[Tiny()], entry_points=False)


@pytest.fixture(scope="session")
def cli_sweep(tmp_path_factory, cli, mnist_npz) -> Path:
    """One real ``mnistbench run --all`` through the command line, shared by every test that
    only reads its outputs (``helpers.CLI_SWEEP_ARGS``); returns its output directory. Tests
    must not modify it: copy it first (``shutil.copytree``) to change anything.

    Made once per test session, whatever the number of xdist workers: the first worker
    to need it runs it while the others wait on a lock in the session's shared temporary
    directory, then read it.
    """
    from filelock import FileLock
    from helpers import CLI_SWEEP_ARGS

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is below the session's
        shared = shared.parent
    output, done = shared / "cli-sweep" / "out", shared / "cli-sweep" / "done"
    with FileLock(str(shared / "cli-sweep.lock")):
        if not done.is_file():  # not made yet, or an earlier worker's attempt failed
            args = ("run", "--all", *CLI_SWEEP_ARGS, "--output", str(output), "--force")
            result = cli(*args, "--data", str(mnist_npz))
            assert result.returncode == 0, result.stderr
            done.touch()
    return output


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, at /usr/bin/chromium) for the HTML pages' tests, one per
    test module: ``browser.visit(page, screenshot)`` returns what the page did (tests/browser.py).

    Skips the test where Chromium or Playwright is missing (``.ci/run`` installs Chromium).
    """
    import browser as harness

    reason = harness.unavailable()
    if reason:
        pytest.skip(reason)
    with harness.launch() as chromium:
        yield chromium


@pytest.fixture(autouse=True)
def _mnistbench_logger_restored():
    """The ``mnistbench`` logger as each test found it: a command run in-process (CliRunner)
    sends it to its own rich handler and stops its propagation, which would hide later
    tests' warnings from ``caplog``."""
    import logging

    logger = logging.getLogger("mnistbench")
    saved = (list(logger.handlers), logger.propagate, logger.level, logger.disabled)
    yield
    logger.handlers[:], logger.propagate, logger.level, logger.disabled = (
        saved[0],
        saved[1],
        saved[2],
        saved[3],
    )
