"""FLOPs per sample: hand-computed counts for the seed models and each supported layer."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from mnistbench.flops import (  # noqa: E402
    count_flops,
    count_macs,
    layer_macs,
    measure_peak_flops,
)


def dnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def rnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.LSTM(128, activation="relu", return_sequences=True),
            layers.Dropout(0.2),
            layers.LSTM(128, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )


def cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3)),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(100, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


DNN_MACS = 784 * 128 + 128 * 128 + 128 * 10
DNN_BIAS_ADDS = 128 + 128 + 10

# LSTM: 4 gates, each a (input_dim + units) x units matmul, at each of 28 timesteps.
RNN_MACS = 28 * 4 * 128 * (28 + 128) + 28 * 4 * 128 * (128 + 128) + 128 * 32 + 32 * 10
RNN_BIAS_ADDS = 28 * 4 * 128 + 28 * 4 * 128 + 32 + 10

# Conv2D 3x3 valid on 28x28x1: 26x26 output positions; MaxPooling2D 2x2 halves it to 13x13.
CNN_MACS = 26 * 26 * 32 * 3 * 3 * 1 + 13 * 13 * 32 * 100 + 100 * 10
CNN_OTHER_FLOPS = 26 * 26 * 32 + 13 * 13 * 32 * 2 * 2 + 100 + 10  # conv bias, pooling, dense bias


def test_dnn_macs_are_its_three_matmuls():
    assert count_macs(dnn()) == DNN_MACS == 118016


def test_rnn_macs_are_two_lstms_over_28_timesteps_and_two_denses():
    assert count_macs(rnn()) == RNN_MACS == 5910848


def test_cnn_macs_are_the_conv_and_two_denses():
    assert count_macs(cnn()) == CNN_MACS == 736488


def test_conv_layer_macs_count_every_output_position():
    model = cnn()
    assert layer_macs(model.layers[0], (28, 28, 1)) == 26 * 26 * 32 * 3 * 3 * 1 == 194688


def test_inference_flops_are_two_per_mac_plus_bias_adds():
    assert count_flops(dnn())[0] == 2 * DNN_MACS + DNN_BIAS_ADDS == 236298
    assert count_flops(rnn())[0] == 2 * RNN_MACS + RNN_BIAS_ADDS == 11850410


def test_pooling_counts_pool_size_operations_per_output_element_as_flops_not_macs():
    model = cnn()
    assert layer_macs(model.layers[1], (26, 26, 32)) == 0
    assert count_flops(model)[0] == 2 * CNN_MACS + CNN_OTHER_FLOPS == 1516350


@pytest.mark.parametrize("build", [dnn, rnn, cnn])
def test_training_flops_are_three_times_inference(build):
    inference, train = count_flops(build())
    assert train == 3 * inference


def test_conv2d_same_padding_with_stride_2_counts_the_strided_output():
    model = keras.Sequential(
        [keras.Input((28, 28, 3)), layers.Conv2D(8, (3, 3), strides=2, padding="same")]
    )
    # "same" with stride 2: ceil(28 / 2) = 14 positions per side.
    assert count_macs(model) == 14 * 14 * 8 * 3 * 3 * 3
    assert count_flops(model)[0] == 2 * 14 * 14 * 8 * 3 * 3 * 3 + 14 * 14 * 8


def test_conv1d_counts_like_conv2d_over_one_axis():
    model = keras.Sequential([keras.Input((28, 4)), layers.Conv1D(6, 5, use_bias=False)])
    assert count_flops(model)[0] == 2 * (28 - 5 + 1) * 6 * 5 * 4


def test_gru_has_three_gates_and_a_bias_per_gate_for_input_and_recurrence():
    model = keras.Sequential([keras.Input((28, 28)), layers.GRU(64)])
    macs = 28 * 3 * 64 * (28 + 64)
    assert count_macs(model) == macs
    # reset_after=True (the Keras 3 default) keeps separate input and recurrent biases.
    assert count_flops(model)[0] == 2 * macs + 28 * 2 * 3 * 64


def test_simple_rnn_has_one_gate():
    model = keras.Sequential([keras.Input((10, 5)), layers.SimpleRNN(7)])
    assert count_macs(model) == 10 * 7 * (5 + 7)


def test_dense_runs_at_every_leading_position():
    model = keras.Sequential([keras.Input((28, 16)), layers.Dense(4, use_bias=False)])
    assert count_macs(model) == 28 * 16 * 4


def test_batch_normalization_costs_two_flops_per_element_and_no_macs():
    model = keras.Sequential([keras.Input((12,)), layers.BatchNormalization()])
    assert count_macs(model) == 0
    assert count_flops(model)[0] == 2 * 12


def test_nested_functional_model_is_walked():
    inner_input = keras.Input((16,))
    inner = keras.Model(inner_input, layers.Dense(8)(inner_input), name="inner")
    outer_input = keras.Input((28, 28))
    hidden = layers.Dense(16)(layers.Flatten()(outer_input))
    model = keras.Model(outer_input, layers.Dense(10)(inner(hidden)))
    assert count_macs(model) == 784 * 16 + 16 * 8 + 8 * 10


def dnn_body() -> keras.Model:
    return keras.Sequential(
        [keras.Input((784,)), layers.Dense(128), layers.Dense(128), layers.Dense(10)]
    )


def test_nested_sequential_model_is_walked():
    model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), dnn_body()])
    assert count_macs(model) == DNN_MACS


class Scale(layers.Layer):
    """A custom layer with a weight: the counter cannot know its cost."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


def test_unknown_layer_with_weights_raises_naming_its_type():
    model = keras.Sequential([keras.Input((8,)), Scale(), layers.Dense(2)])
    with pytest.raises(ValueError, match="layer type Scale"):
        count_flops(model)


def test_unknown_layer_without_weights_counts_zero():
    model = keras.Sequential([keras.Input((8,)), layers.Lambda(lambda x: x * 2), layers.Dense(2)])
    assert count_macs(model) == 8 * 2


def test_shared_layer_raises_rather_than_undercount():
    shared = layers.Dense(4)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="called 2 times"):
        count_macs(model)


def test_subclassed_model_with_weights_raises_naming_its_type():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 5), dtype="float32"))
    with pytest.raises(ValueError, match="subclassed model type Net"):
        count_macs(model)


class NoShapeInference(layers.Layer):
    """Identity that refuses symbolic calls, so a Sequential holding it has no graph."""

    def compute_output_spec(self, x):
        raise NotImplementedError

    def call(self, x):
        return x


def test_layers_off_the_graph_use_the_shape_they_were_built_with():
    model = keras.Sequential([keras.Input((6,)), NoShapeInference(), layers.Dense(3)])
    model(np.zeros((2, 6), dtype="float32"))
    assert count_macs(model) == 6 * 3


def test_unbuilt_model_raises():
    with pytest.raises(ValueError, match="not built"):
        count_macs(keras.Sequential([layers.Dense(3)]))


def test_unknown_timesteps_raise_naming_the_layer():
    model = keras.Sequential([keras.Input((None, 5)), layers.LSTM(4, name="variable")])
    with pytest.raises(ValueError, match="'variable'.*unknown dimension"):
        count_macs(model)


def test_measure_peak_flops_is_a_positive_finite_rate():
    peak = measure_peak_flops(size=256, repeats=2)
    assert isinstance(peak, float)
    assert math.isfinite(peak) and peak > 0


def test_measure_peak_flops_is_the_fastest_timed_run_after_an_untimed_warm_up(monkeypatch):
    from types import SimpleNamespace

    from mnistbench import flops

    # The warm-up takes 10 s, then the three timed runs 4 s, 2 s and 3 s.
    ticks = iter([0.0, 10.0, 10.0, 14.0, 14.0, 16.0, 16.0, 19.0])
    monkeypatch.setattr(flops, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert measure_peak_flops(size=8, repeats=3) == 2 * 8**3 / 2.0
    assert next(ticks, None) is None  # one warm-up and three timed runs, nothing more


def test_measure_peak_flops_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        measure_peak_flops(size=16, repeats=0)


def test_importing_the_module_does_not_import_keras():
    code = (
        "import sys, mnistbench.flops; "
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
