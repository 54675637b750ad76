"""bench peers' Keras row: the workload's model in one Keras process (model.fit, batch `batch`),
with THREADS TensorFlow threads (0: TensorFlow's default).

    python bench/peers/keras_fit.py MODEL EPOCHS BATCH LR DATA_DIR 1 THREADS
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from common import load_arrays, now_ms, report, workload  # noqa: E402
from keras_models import build, timing_callback  # noqa: E402

w = workload()
import tensorflow as tf  # noqa: E402

if w.threads > 0:
    tf.config.threading.set_intra_op_parallelism_threads(w.threads)
    tf.config.threading.set_inter_op_parallelism_threads(w.threads)
x, y = load_arrays(w)
model = build(tf.keras, w.model, w.lr)
times, callback = timing_callback(tf.keras)
model.fit(x, y, batch_size=w.batch, epochs=w.epochs, shuffle=True, verbose=0, callbacks=[callback])
model.save(os.path.join(w.data, f"keras-{os.getpid()}.keras"))
report({**times, "saved_at": now_ms()})
