"""One side of an A/B measurement: a version of a Python project, installed where runs see it.

``mnistbench ab BASE HEAD`` measures two versions of the project in the current directory
(mnistbench itself, or a plugin's package). A :class:`Side` is the Python interpreter its
runs start, and the environment variables that put its version first on the path:

- a git ref (:func:`install_ref`) is exported with ``git archive`` and installed with
  ``pip install --no-deps --target DIR`` (built with this environment's build backend,
  else with one from the package index, as any ``pip install`` gets it), into a
  directory cached by
  commit under :func:`cache_dir`, so a second ``ab`` of the same commit starts at once.
  Runs use this interpreter with ``PYTHONPATH=DIR``: the version's own modules and
  metadata (its entry points) come before the installed ones, and everything else
  (Keras, TensorFlow, mnistbench for a plugin) is this environment's. A version that needs
  other dependencies is measured with two environments of its own instead;
- :data:`WORKTREE` names the uncommitted working tree, installed the same way, afresh
  each time (it has no commit to cache by), into a temporary directory removed when the
  process ends;
- ``--base-python PATH`` / ``--head-python PATH`` (:func:`existing`): an environment
  that already has what it needs (TensorFlow 2.20 against 2.21, say), used as it is.

Installing fails in one line naming the install log, which is kept.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mnistbench.atomic import atomic_writer
from mnistbench.data import cache_dir as data_cache_dir
from mnistbench.errors import MnistbenchError

#: The ref that names the working tree as it is, uncommitted changes included.
WORKTREE = "WORKTREE"
#: The file in an installed directory that says the install finished.
INSTALLED = ".mnistbench-installed"
#: Seconds a git command may take.
GIT_TIMEOUT = 60
#: Seconds an install may take.
INSTALL_TIMEOUT = 900


class CheckoutError(MnistbenchError):
    """A side cannot be prepared: not a git repository, an unknown ref, a failed install."""


@dataclass(frozen=True)
class Side:
    """How to start a run of one version: its ``python``, the variables ``env`` adds (its
    installed directory first on ``PYTHONPATH``), and what it is.

    :param name: ``base`` or ``head``.
    :param ref: the ref as given (``HEAD~1``, ``main``, :data:`WORKTREE`), or the path of
        an existing interpreter.
    :param commit: the full commit, "" for the working tree or an existing environment.
    :param dirty: the working tree had uncommitted changes.
    :param install_log: the log of the install, None when nothing was installed.
    """

    name: str
    ref: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    commit: str = ""
    dirty: bool = False
    install_log: Path | None = None
    cached: bool = False

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of this side's processes: ``base`` (default: this process's)
        with the side's variables, ``PYTHONPATH`` prepended rather than replaced."""
        environ = dict(os.environ if base is None else base)
        for name, value in self.env.items():
            if name == "PYTHONPATH" and environ.get("PYTHONPATH"):
                value = os.pathsep.join([value, environ["PYTHONPATH"]])
            environ[name] = value
        return environ

    def describe(self) -> str:
        """``base HEAD~1 (1a2b3c4)``, ``head WORKTREE (1a2b3c4, uncommitted changes)``."""
        if not self.commit:
            return f"{self.name} {self.ref}"
        state = ", uncommitted changes" if self.dirty else ""
        return f"{self.name} {self.ref} ({self.commit[:7]}{state})"


def cache_dir() -> Path:
    """Where installed versions are kept, one directory per repository and commit."""
    return data_cache_dir() / "ab"


def _git(repository: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=repository,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckoutError(f"git {' '.join(args)} failed in {repository}: {error}") from None
    if result.returncode != 0:
        raise CheckoutError(result.stderr.strip().splitlines()[-1] if result.stderr else "")
    return result.stdout.strip()


def repository_root(directory: Path) -> Path:
    """The root of the git repository ``directory`` is in; CheckoutError if none."""
    try:
        return Path(_git(directory, "rev-parse", "--show-toplevel"))
    except CheckoutError:
        raise CheckoutError(
            f"{Path(directory).resolve()} is not in a git repository: ab measures two "
            "versions of a git repository's project (or give --base-python and --head-python)"
        ) from None


def resolve(repository: Path, ref: str) -> str:
    """The full commit ``ref`` names; CheckoutError naming it when it names none."""
    if ref == WORKTREE:
        return _git(repository, "rev-parse", "HEAD")
    try:
        return _git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except CheckoutError:
        raise CheckoutError(
            f"{ref!r} is no commit, branch or tag of the git repository at {repository} "
            f"(or {WORKTREE} for the working tree)"
        ) from None


def _is_project(directory: Path) -> bool:
    return (directory / "pyproject.toml").is_file() or (directory / "setup.py").is_file()


def install_ref(repository: Path, ref: str, name: str) -> Side:
    """Side ``name`` at ``ref`` of ``repository``: installed into the cache (a commit) or
    into a temporary directory (the working tree), unless already there. CheckoutError,
    one line naming the kept install log, when the version cannot be installed."""
    repository = repository_root(repository)
    commit = resolve(repository, ref)
    if ref == WORKTREE:
        dirty = bool(_git(repository, "status", "--porcelain", "--untracked-files=no"))
        scratch = Path(tempfile.mkdtemp(prefix=f"mnistbench-{name}-worktree-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        target, log = scratch / "site", scratch / "install.log"
        _install(repository, target, name, ref, log=log)
        return _side(name, ref, target, commit, dirty, cached=False, log=log)
    key = hashlib.sha256(str(repository.resolve()).encode()).hexdigest()[:12]
    target = cache_dir() / f"{repository.name}-{key}" / commit
    log = target.with_name(f"{commit}.log")
    if (target / INSTALLED).is_file():
        return _side(name, ref, target, commit, False, cached=True, log=log)
    with tempfile.TemporaryDirectory(prefix=f"mnistbench-{name}-") as temporary:
        source = Path(temporary) / "source"
        source.mkdir()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit],
            cwd=repository,
            capture_output=True,
            timeout=GIT_TIMEOUT,
        )
        if archive.returncode != 0:
            raise CheckoutError(f"git archive {commit[:7]} failed: {archive.stderr.decode()!s}")
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
        if not _is_project(source):
            raise CheckoutError(
                f"{ref} ({commit[:7]}) has no pyproject.toml or setup.py at the repository's "
                "root: ab installs the Python project the repository holds"
            )
        building = target.with_name(f".{commit}.building")
        if building.exists():
            shutil.rmtree(building)
        _install(source, building, name, ref, log=log)
        if target.exists():  # another ab installed it meanwhile
            shutil.rmtree(building)
        else:
            building.rename(target)
    return _side(name, ref, target, commit, False, cached=False, log=log)


def _install(source: Path, target: Path, name: str, ref: str, *, log: Path) -> None:
    """``pip install --no-deps --target TARGET SOURCE``, its output in ``log``: first with
    this environment's build backend (quick, and no network), then, when that cannot build
    it (a project that needs a newer setuptools), with pip's isolated build."""
    if not _is_project(source):
        raise CheckoutError(f"{source} has no pyproject.toml or setup.py: nothing to install")
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(target),
        str(source),
    ]
    with open(log, "w") as handle:
        for attempt in ([*command, "--no-build-isolation"], command):
            handle.write(f"$ {' '.join(attempt)}\n")
            handle.flush()
            if target.exists():
                shutil.rmtree(target)
            try:
                result = subprocess.run(
                    attempt,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT,
                    env={**os.environ, "PIP_NO_CACHE_DIR": "1"},
                )
            except subprocess.TimeoutExpired:
                raise CheckoutError(
                    f"installing {name} ({ref}) took over {INSTALL_TIMEOUT} s; see {log}"
                ) from None
            if result.returncode == 0:
                break
        else:
            raise CheckoutError(f"{name} ({ref}) failed to install; its install log: {log}")
    with atomic_writer(target / INSTALLED, "w") as handle:
        handle.write(f"{ref}\n")


def _side(
    name: str, ref: str, target: Path, commit: str, dirty: bool, *, cached: bool, log: Path
) -> Side:
    return Side(
        name,
        ref,
        sys.executable,
        {"PYTHONPATH": str(target)},
        commit=commit,
        dirty=dirty,
        install_log=log,
        cached=cached,
    )


def existing(name: str, python: Path) -> Side:
    """Side ``name`` as the environment of the interpreter ``python`` has it."""
    python = Path(python)
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise CheckoutError(f"--{name}-python {python}: not an executable file")
    probe = subprocess.run(
        [str(python), "-c", "import mnistbench"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        raise CheckoutError(f"--{name}-python {python}: mnistbench is not installed there")
    return Side(name, str(python), str(python))
