"""Analytic FLOPs per sample of a built Keras 3 model, and the machine's measured peak FLOP/s.

The convention, exact for the layers counted here:

* **MACs** (multiply-accumulates) are the matrix work of Dense, Conv1D/2D/3D, LSTM, GRU
  and SimpleRNN layers, per sample:

  - Dense: ``in_features * units``, at every position of the leading dimensions (a Dense on
    (28, 64) inputs runs 28 times);
  - Conv: ``out_positions * filters * prod(kernel_size) * in_channels / groups``, with the
    output positions from ``layer.compute_output_shape`` so padding and strides count;
  - LSTM, GRU, SimpleRNN: ``timesteps * gates * units * (input_dim + units)`` with 4, 3 and
    1 gates.

* **Inference FLOPs** per sample = ``2 * MACs`` (a multiply-add counts as 2) plus the
  element-wise work that is not negligible next to it:

  - 1 FLOP per bias element each time the bias is added (per output position of a Dense or
    Conv, per timestep of a recurrent layer);
  - pooling: ``prod(pool_size)`` operations (comparisons or additions) per output element,
    and one per input element for global pooling; pooling has no MACs;
  - BatchNormalization: 2 FLOPs per element (its inference form folds to a scale and a
    shift).

  Activations, the gate products inside recurrent cells, dropout, reshapes and every other
  layer without weights count 0.

* **Training FLOPs** per sample = ``3 * inference FLOPs``: the backward pass costs about
  twice the forward pass (gradients with respect to both activations and weights).

A layer with weights of a type not listed above raises ``ValueError`` naming its type, so
the caller can record the count as unknown or ask the ``mnistbench_model_flops`` hook.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import keras

# Forward + backward ≈ 3 forward passes: the "6N FLOPs per token" training estimate of
# Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section 2.1 (2N forward,
# 4N backward).
TRAIN_TO_INFERENCE_FLOPS = 3

_RNN_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


class _Cost(NamedTuple):
    macs: int
    other_flops: int  # bias adds, pooling, normalisation: counted once, not doubled


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _require_known(layer: keras.layers.Layer, input_shape: tuple) -> tuple[int, ...]:
    if any(dim is None for dim in input_shape):
        raise ValueError(
            f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): its input "
            f"shape {tuple(input_shape)} has an unknown dimension; give keras.Input a full shape"
        )
    return tuple(int(dim) for dim in input_shape)


def _output_shape(layer: keras.layers.Layer, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(dim) for dim in layer.compute_output_shape((None, *input_shape))[1:])


def _bias_size(weight_owner) -> int:
    bias = getattr(weight_owner, "bias", None)
    return 0 if bias is None else _size(tuple(bias.shape))


def _layer_cost(layer: keras.layers.Layer, input_shape) -> _Cost:
    from keras import layers as kl

    if isinstance(layer, kl.Dense):
        shape = _require_known(layer, input_shape)
        positions = _size(shape[:-1])
        return _Cost(positions * shape[-1] * layer.units, positions * _bias_size(layer))

    if isinstance(layer, (kl.Conv1D, kl.Conv2D, kl.Conv3D)):
        shape = _require_known(layer, input_shape)
        out = _output_shape(layer, shape)
        if layer.data_format == "channels_first":
            in_channels, out_positions = shape[0], _size(out[1:])
        else:
            in_channels, out_positions = shape[-1], _size(out[:-1])
        per_position = layer.filters * _size(layer.kernel_size) * (in_channels // layer.groups)
        return _Cost(out_positions * per_position, out_positions * _bias_size(layer))

    gates = next(
        (n for name, n in _RNN_GATES.items() if isinstance(layer, getattr(kl, name))), None
    )
    if gates is not None:
        timesteps, input_dim = _require_known(layer, input_shape)
        units = layer.cell.units
        macs = timesteps * gates * units * (input_dim + units)
        return _Cost(macs, timesteps * _bias_size(layer.cell))

    pooling = (
        kl.MaxPooling1D,
        kl.MaxPooling2D,
        kl.MaxPooling3D,
        kl.AveragePooling1D,
        kl.AveragePooling2D,
        kl.AveragePooling3D,
    )
    if isinstance(layer, pooling):
        shape = _require_known(layer, input_shape)
        return _Cost(0, _size(_output_shape(layer, shape)) * _size(layer.pool_size))

    global_pooling = (
        kl.GlobalMaxPooling1D,
        kl.GlobalMaxPooling2D,
        kl.GlobalMaxPooling3D,
        kl.GlobalAveragePooling1D,
        kl.GlobalAveragePooling2D,
        kl.GlobalAveragePooling3D,
    )
    if isinstance(layer, global_pooling):
        return _Cost(0, _size(_require_known(layer, input_shape)))

    if isinstance(layer, kl.BatchNormalization):
        return _Cost(0, 2 * _size(_require_known(layer, input_shape)))

    if layer.weights:
        raise ValueError(
            f"cannot count FLOPs of layer {layer.name!r}: layer type {type(layer).__name__} "
            "has weights and is not one mnistbench counts; implement the "
            "mnistbench_model_flops hook for this architecture"
        )
    return _Cost(0, 0)


def layer_macs(layer: keras.layers.Layer, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates per sample of one built layer.

    :param layer: a built Keras layer.
    :param input_shape: the shape of one sample reaching the layer, without the batch
        dimension, e.g. ``(28, 28)``.
    :return: the MACs of the layer's matrix work; 0 for pooling, normalisation and layers
        without weights.
    :raises ValueError: the layer has weights and a type this module does not count, or a
        dimension the count needs is unknown; the message names the layer and its type.
    """
    return _layer_cost(layer, input_shape).macs


def _is_graph_model(model: keras.Model) -> bool:
    import keras

    # Sequential and functional models know which layer feeds which; a subclassed model's
    # call() may run a layer any number of times, so its layer list says nothing exact.
    return isinstance(model, keras.Sequential) or hasattr(model, "inputs")


def _sample_shape(layer: keras.layers.Layer):
    """The per-sample input shape(s) of a layer's first call, from its graph node or its build."""
    try:
        tensors = layer.input
    except (AttributeError, ValueError):
        # No graph node (e.g. a Sequential whose symbolic build stopped at a layer without
        # shape inference): the shape the layer was built with is the same shape.
        shape = layer.get_build_config().get("input_shape") if layer.built else None
        if shape is None:
            raise ValueError(
                f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): its "
                "input shape is unknown; build the model with keras.Input first"
            ) from None
        return tuple(shape[1:])
    if isinstance(tensors, (list, tuple)):
        return [tuple(tensor.shape[1:]) for tensor in tensors]
    return tuple(tensors.shape[1:])


def _leaf_layers(model: keras.Model):
    """Yield ``(layer, per_sample_input_shape)`` for every non-model layer, nested models walked."""
    import keras

    if not _is_graph_model(model):
        if not model.weights:
            return
        raise ValueError(
            f"cannot count FLOPs of model {model.name!r}: subclassed model type "
            f"{type(model).__name__} may call its layers any number of times; implement the "
            "mnistbench_model_flops hook for this architecture"
        )
    if not model.built:
        raise ValueError(
            f"cannot count FLOPs of model {model.name!r}: it is not built; "
            "start it with keras.Input or call it on a batch first"
        )
    for layer in model.layers:
        # The graph keeps only the first call's shapes: a layer or nested model called twice
        # would be counted once, so refuse rather than undercount. _inbound_nodes is the
        # only record of the calls Keras 3 keeps.
        calls = len(getattr(layer, "_inbound_nodes", ()))
        if calls > 1:
            raise ValueError(
                f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): it is "
                f"called {calls} times; shared layers are not counted, implement the "
                "mnistbench_model_flops hook for this architecture"
            )
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        elif isinstance(layer, keras.layers.InputLayer):
            continue
        else:
            yield layer, _sample_shape(layer)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates per sample of a built Sequential or functional model.

    :param model: a built ``keras.Model``; nested Sequential and functional models are
        walked, each layer counted once.
    :return: the sum of :func:`layer_macs` over the model's layers.
    :raises ValueError: a layer with weights this module does not count, a shared layer, a
        subclassed model with weights, or an unbuilt model; the message names it.
    """
    return sum(layer_macs(layer, shape) for layer, shape in _leaf_layers(model))


def count_flops(model: keras.Model) -> tuple[int, int]:
    """Floating-point operations per sample of a built model, by the module's convention.

    :param model: as for :func:`count_macs`.
    :return: ``(inference_flops_per_sample, train_flops_per_sample)``: ``2 * MACs`` plus
        bias adds, pooling and normalisation work; training is 3 times inference.
    :raises ValueError: as :func:`count_macs`.
    """
    costs = [_layer_cost(layer, shape) for layer, shape in _leaf_layers(model)]
    inference = sum(2 * cost.macs + cost.other_flops for cost in costs)
    return inference, TRAIN_TO_INFERENCE_FLOPS * inference


def measure_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """The FLOP/s of a float32 ``size x size`` matmul on the Keras backend in use.

    Uses ``keras.ops.matmul`` on backend tensors, so the peak is the engine the models run
    on (device, threads and math mode included). One untimed warm-up, then the fastest of
    ``repeats`` runs; each run counts ``2 * size**3`` FLOPs.

    :param size: side of the square matrices.
    :param repeats: timed runs after the warm-up.
    :return: the best FLOP/s observed.
    :raises ValueError: ``size`` or ``repeats`` below 1.
    """
    if size < 1 or repeats < 1:
        raise ValueError(f"size and repeats must be at least 1, got {size} and {repeats}")
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (
        keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
        for _ in range(2)
    )

    def seconds() -> float:
        start = time.perf_counter()
        # Reading a value back forces completion on asynchronous backends (JAX, GPUs). Summing
        # first brings back one scalar, not size**2 floats whose device-to-host copy would
        # be timed as matmul; the sum's size**2 additions are under 1/size of the work.
        keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b)))
        return time.perf_counter() - start

    seconds()  # warm-up: kernel selection, thread pools, compilation
    best = min(seconds() for _ in range(repeats))
    return 2 * size**3 / best
