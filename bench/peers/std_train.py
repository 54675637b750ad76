"""bench peers' spark-tensorflow-distributor row, as its README runs it: MirroredStrategyRunner with
WORKERS slots on local-cluster[WORKERS,1,1024], model.fit under MultiWorkerMirroredStrategy on
tf-keras (TF_USE_LEGACY_KERAS=1: STD fails under Keras 3), global batch = BATCH x WORKERS.

    python bench/peers/std_train.py MODEL EPOCHS BATCH LR DATA_DIR WORKERS
"""

from __future__ import annotations

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from dataclasses import asdict  # noqa: E402

from common import Workload, local_cluster, report, workload  # noqa: E402


def train(fields: dict, here: str) -> dict:
    # The workload comes as a dict: the executors' Python unpickles it before `here` is on its path.
    import sys

    sys.path.insert(0, here)
    import tensorflow as tf
    from common import Workload, load_arrays, now_ms
    from keras_models import build, timing_callback

    w = Workload(**fields)
    x, y = load_arrays(w)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=1).batch(w.batch * w.workers)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model = build(tf.keras, w.model, w.lr)
    times, callback = timing_callback(tf.keras)
    model.fit(data.with_options(options), epochs=w.epochs, verbose=0, callbacks=[callback])
    model.save(os.path.join(w.data, f"std-{os.getpid()}.h5"))
    return {**times, "saved_at": now_ms()}


if __name__ == "__main__":
    w = workload()
    spark = local_cluster(
        w.workers,
        {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
    )
    from spark_tensorflow_distributor import MirroredStrategyRunner

    result = MirroredStrategyRunner(num_slots=w.workers, use_gpu=False, local_mode=False).run(train, fields=asdict(w), here=here)
    report(result)
    spark.stop()
