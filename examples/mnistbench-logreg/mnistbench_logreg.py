"""A complete third-party mnistbench plugin: multinomial logistic regression."""

import mnistbench


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register("logreg", description="Logistic regression: Flatten, Dense(10, softmax)")


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture != "logreg":
        return None  # another plugin's architecture
    import keras  # import inside the hook: listing plugins stays fast

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
