"""bench train's Keras rows: the same models, batch, optimizer and synthetic data in Python Keras on
the same TensorFlow, in one process: an eager GradientTape loop ("keras-eager", op by op as tfjs
runs) and the same step compiled with tf.function ("keras", what model.fit gives a Keras user).

    python bench/keras_train.py MODELS WARMUP STEPS BATCH THREADS   -> one JSON line of rows
"""

from __future__ import annotations

import json
import os
import sys
import time

models, warmup, steps, batch, threads = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
keras = tf.keras


def build(name: str) -> "keras.Model":
    if name == "mlp":
        layers = [keras.Input((784,)), keras.layers.Dense(512, "relu"), keras.layers.Dense(512, "relu"), keras.layers.Dense(10)]
    else:
        layers = [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, "relu"),
            keras.layers.Dense(10),
        ]
    return keras.Sequential(layers)


def measure(name: str, compiled: bool) -> dict[str, object]:
    model = build(name)
    shape = (batch, 784) if name == "mlp" else (batch, 28, 28, 1)
    xs = tf.random.uniform(shape)
    ys = tf.one_hot(tf.random.uniform((batch,), 0, 10, tf.int32), 10)
    optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)

    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(ys, model(xs, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    run = tf.function(step) if compiled else step
    for _ in range(warmup):
        run().numpy()
    started = time.perf_counter()
    for _ in range(steps):
        loss = run()
    loss.numpy()
    seconds = time.perf_counter() - started
    return {
        "impl": "keras" if compiled else "keras-eager",
        "model": name,
        "workers": 1,
        "threads": threads,
        "backend": f"tensorflow {tf.__version__} {'gpu' if tf.config.list_physical_devices('GPU') else 'cpu'}",
        "samples_per_s": steps * batch / seconds,
        "step_ms": seconds * 1000 / steps,
    }


print(json.dumps([measure(m, compiled) for m in models for compiled in (False, True)]))
