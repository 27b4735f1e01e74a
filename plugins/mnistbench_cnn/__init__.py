"""The tutorial's small convolutional network, as an ordinary mnistbench plugin.

Conv2D(32, 3x3, no activation, as in the tutorial) → MaxPooling2D(2x2) → Flatten
→ Dense(100, relu) → Dense(10, softmax), on (28, 28, 1) float32 images
L2-normalised along axis 1.
"""

import mnistbench

NAME = "cnn"


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register(NAME, description="Small CNN: Conv2D(32, 3x3), MaxPool(2x2), Dense(100)")


@mnistbench.hookimpl
def mnistbench_prepare_data(architecture, x):
    if architecture != NAME:
        return None
    from keras.utils import normalize

    return normalize(x.reshape(-1, 28, 28, 1).astype("float32"), axis=1)


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture != NAME:
        return None
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, (3, 3)),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dense(100, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name=NAME,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
