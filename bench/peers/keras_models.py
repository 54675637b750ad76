"""The bench peers models in Keras (Keras 3 for the Keras rows, tf-keras for spark-tensorflow-distributor),
the same as bench/entries/peers-fit.mjs builds in tfjs: glorot-uniform, SGD, sparse categorical
cross-entropy on softmax outputs."""

from __future__ import annotations

from typing import Any

from common import now_ms


def build(keras: Any, name: str, lr: float) -> Any:
    if name == "mlp":
        layers = [
            keras.Input((784,)),
            keras.layers.Dense(512, "relu"),
            keras.layers.Dense(512, "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    else:
        layers = [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def timing_callback(keras: Any) -> tuple[dict[str, Any], Any]:
    """The first step's end and each epoch's end with its training accuracy, in epoch ms."""
    times: dict[str, Any] = {"first_step_at": None, "epochs": []}

    class Timing(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if times["first_step_at"] is None:
                times["first_step_at"] = now_ms()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times["epochs"].append({"at": now_ms(), "acc": float((logs or {}).get("accuracy", 0.0))})

    return times, Timing()
