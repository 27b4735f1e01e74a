"""A test plugin with misbehaving architectures, installed into a temporary site by the tests.

- ``tiny``: a fast logistic regression that trains fine.
- ``sleepy``: hangs while building its model (for ``--timeout``).
- ``nan``: trains on NaN inputs, so its loss is NaN (diverges).
"""

import time

import mnistbench


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register("tiny", description="logistic regression")
    register("sleepy", description="hangs while building")
    register("nan", description="loss becomes NaN")


@mnistbench.hookimpl
def mnistbench_prepare_data(architecture, x):
    if architecture == "nan":
        return x.astype("float32") * float("nan")
    return None


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture not in ("tiny", "sleepy", "nan"):
        return None
    if architecture == "sleepy":
        time.sleep(600)
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
