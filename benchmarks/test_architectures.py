"""Regression benchmarks: a fixed amount of training and inference per architecture.

Save a baseline with ``--benchmark-autosave``; fail on regression with
``--benchmark-compare --benchmark-compare-fail=median:15%`` (see the README). Each benchmark
also records the speed probe and its median divided by it in ``extra_info`` (the
``speed_probe`` fixture), to tell a slower machine from a slower code.
"""

import pytest

from mnistbench.runner import NUM_CLASSES

BATCH_SIZE = 32
TRAIN_STEPS = 20  # one epoch over 20 batches per round
INFERENCE_SAMPLES = 1000
ROUNDS = 5


@pytest.fixture
def model_and_data(architecture, plugins, mnist):
    count = TRAIN_STEPS * BATCH_SIZE
    x_train = plugins.prepare_data(architecture, mnist.x_train[:count], "train")
    x_test = plugins.prepare_data(architecture, mnist.x_test[:INFERENCE_SAMPLES], "test")
    model = plugins.build_model(architecture, x_train.shape[1:], NUM_CLASSES)
    return model, x_train, mnist.y_train[:count], x_test


def test_training_steps(benchmark, speed_probe, architecture, model_and_data):
    model, x_train, y_train, _ = model_and_data
    benchmark.extra_info.update(architecture=architecture, steps=TRAIN_STEPS, batch_size=BATCH_SIZE)

    def train():
        return model.fit(
            x_train, y_train, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0
        )

    # The warm-up round traces the train function; only steady-state steps are timed.
    history = benchmark.pedantic(train, rounds=ROUNDS, warmup_rounds=1)
    assert len(history.history["loss"]) == 1


def test_inference(benchmark, speed_probe, architecture, model_and_data):
    model, _, _, x_test = model_and_data
    benchmark.extra_info.update(architecture=architecture, samples=INFERENCE_SAMPLES)

    def predict():
        return model.predict(x_test, batch_size=BATCH_SIZE, verbose=0)

    probabilities = benchmark.pedantic(predict, rounds=ROUNDS, warmup_rounds=1)
    assert probabilities.shape == (INFERENCE_SAMPLES, NUM_CLASSES)
