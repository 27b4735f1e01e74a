"""The tutorial's dense network, as an ordinary mnistbench plugin.

Flatten → Dense(128, relu) → Dense(128, relu) → Dense(10, softmax), trained on
images L2-normalised along axis 1, as the tutorial does.
"""

import mnistbench

NAME = "dnn"


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register(NAME, description="Dense network: Flatten, Dense(128) x2, Dense(10)")


@mnistbench.hookimpl
def mnistbench_prepare_data(architecture, x):
    if architecture != NAME:
        return None
    from keras.utils import normalize

    return normalize(x.astype("float32"), axis=1)


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture != NAME:
        return None
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name=NAME,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
