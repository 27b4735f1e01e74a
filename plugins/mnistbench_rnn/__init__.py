"""The tutorial's LSTM network, as an ordinary mnistbench plugin.

Each image is read as 28 timesteps of 28 pixels:
LSTM(128, relu, return_sequences) → Dropout(0.2) → LSTM(128, relu) → Dropout(0.2)
→ Dense(32, relu) → Dropout(0.2) → Dense(10, softmax).
The tutorial's function forgets to create its Sequential model; this one does.
"""

import mnistbench

NAME = "rnn"


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register(NAME, description="LSTM network: 28 timesteps of 28 pixels, LSTM(128) x2, Dense(32)")


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
            layers.LSTM(128, activation="relu", return_sequences=True),
            layers.Dropout(0.2),
            layers.LSTM(128, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name=NAME,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
