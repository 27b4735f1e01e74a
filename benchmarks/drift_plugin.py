"""A plugin for the drift measurement (benchmarks/drift.py): the reference architectures
with a known slowdown in code.

It registers ``burn-dnn``, ``burn-cnn`` and ``burn-rnn``. Each prepares its data and
builds its model with the reference plugin's own hook functions (``mnistbench_dnn``,
``mnistbench_cnn``, ``mnistbench_rnn``), so with no burn it trains exactly the reference
model. When the environment variable :data:`BURN_VARIABLE` is a positive integer N, the
model gets a :class:`Burn` layer in front: every step it multiplies a non-trainable N×N
matrix by itself and adds the result times a non-trainable zero to its input. The output,
the gradients and what the model learns are unchanged; each training and inference step
does 2·N³ more floating-point operations. That is "a real slowdown in code", which the
speed probe must not normalize away.

drift.py installs this module as a distribution with an entry point in the ``mnistbench``
group (:data:`ENTRY_POINT`), so the CLI's worker processes find it like any plugin.
"""

from __future__ import annotations

import os
from types import ModuleType

import mnistbench

#: The environment variable holding the burn size N (0 or unset: no burn).
BURN_VARIABLE = "MNISTBENCH_DRIFT_BURN"
#: Prefix of the architectures this plugin registers: ``burn-dnn`` wraps ``dnn``.
PREFIX = "burn-"
#: The reference architectures wrapped.
REFERENCE = ("dnn", "cnn", "rnn")
#: Entry point name and target, for installing this module as a plugin.
ENTRY_POINT = {"drift": "drift_plugin"}


def burn_size() -> int:
    """The burn size N from :data:`BURN_VARIABLE`: 0 when unset or empty.

    :raises ValueError: when it is set to anything but a non-negative integer.
    """
    text = os.environ.get(BURN_VARIABLE, "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"{BURN_VARIABLE}={text!r}: expected a non-negative integer")
    return int(text)


def _reference(architecture: str) -> tuple[str, ModuleType] | None:
    """``(reference name, its plugin module)`` for one of ours, else None."""
    if not architecture.startswith(PREFIX) or architecture[len(PREFIX) :] not in REFERENCE:
        return None
    name = architecture[len(PREFIX) :]
    import importlib

    return name, importlib.import_module(f"mnistbench_{name}")


def burn_layer(size: int):
    """A Keras layer that does a ``size``×``size`` matmul every step and returns its input
    unchanged (plus exactly 0). Built lazily so importing this module imports no Keras."""
    import keras
    from keras import ops

    class Burn(keras.layers.Layer):
        """Adds ``0 × mean(w @ w)`` to its input: extra work per step, the same output."""

        def __init__(self, size: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.size = size

        def build(self, input_shape) -> None:
            # Variables, not constants: no compiler may fold the work away.
            self.w = self.add_weight(
                shape=(self.size, self.size), initializer="ones", trainable=False, name="w"
            )
            self.zero = self.add_weight(shape=(), initializer="zeros", trainable=False, name="zero")

        def call(self, x):
            work = ops.mean(ops.matmul(self.w, self.w))
            return x + ops.cast(work * self.zero, x.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    return Burn(size, name="burn")


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    for name in REFERENCE:
        register(
            f"{PREFIX}{name}",
            description=f"{name} with an N×N matmul per step (N = ${BURN_VARIABLE}, default 0)",
        )


@mnistbench.hookimpl
def mnistbench_prepare_data(architecture, x, split):
    reference = _reference(architecture)
    if reference is None:
        return None
    name, module = reference
    return module.mnistbench_prepare_data(architecture=name, x=x)


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    reference = _reference(architecture)
    if reference is None:
        return None
    name, module = reference
    model = module.mnistbench_build_model(
        architecture=name, input_shape=input_shape, num_classes=num_classes
    )
    size = burn_size()
    if not size:
        return model
    import keras

    burned = keras.Sequential(
        [keras.Input(shape=input_shape), burn_layer(size), *model.layers],
        name=f"{name}_burn{size}",
    )
    # The reference model's compile options (optimizer, loss, metrics), with a fresh optimizer.
    burned.compile_from_config(model.get_compile_config())
    return burned
