"""Writing files atomically: every file mnistbench writes is complete or absent, never partial."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnistbench.errors import ResultsWriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: Path | str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    Readers see either the old complete file or the new complete one, never a
    partial write. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise ResultsWriteError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        # mkstemp creates 0600; results are meant to be shared like any file the user writes.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, ResultsWriteError):
            raise
        # A full disk or a permission problem: one line naming the file; the
        # previous version of the file, if any, is untouched.
        raise ResultsWriteError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def nearest_folder(path: Path | str) -> Path:
    """The folder where ``path`` is, or would be created: itself when it is one, else the
    nearest existing folder above it (which a failed creation would name)."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_creatable(path: Path | str) -> Path:
    """Raise OSError unless ``path`` could be created (or written into, for a folder): its
    :func:`nearest_folder` takes a new file, tried with a temporary one removed at once (as
    root, permissions alone do not tell). Returns that folder; writes nothing that stays."""
    folder = nearest_folder(path)
    with tempfile.TemporaryFile(dir=folder):
        pass
    return folder
