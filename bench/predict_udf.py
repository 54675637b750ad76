"""The predict benchmark's Python side.

`predict_udf.py data ROWS OUT` writes ROWS rows of 64 float32 features p0..p63 (and an id) as parquet.
`predict_udf.py score MODEL_DIR DATA OUT RESULT` (under spark-submit) scores DATA with
pyspark.ml.functions.predict_batch_udf running the same model in Keras on the same TensorFlow,
one TensorFlow thread per task as sparkring's scoring processes have, writes OUT as parquet and
RESULT as {rows, score_ms}.
"""

import json
import os
import sys
import time

import numpy as np


def write_data(rows: int, out: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    xs = rng.integers(0, 17, size=(rows, 64)).astype(np.float32)
    cols = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for j in range(64):
        cols[f"p{j}"] = pa.array(xs[:, j])
    pq.write_table(pa.table(cols), out, row_group_size=1 << 16)


def keras_model(model_dir: str):
    """The tfjs layers model in model_dir as Keras: Dense and Rescaling layers of a Sequential."""
    import tensorflow as tf

    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
        spec = json.load(f)
    weights = np.fromfile(os.path.join(model_dir, "weights.bin"), dtype=np.float32)
    entries = [w for group in spec["weightsManifest"] for w in group["weights"]]
    layers = spec["modelTopology"]["config"]["layers"]
    model = tf.keras.Sequential([tf.keras.Input(shape=(64,))])
    for layer in layers:
        c = layer["config"]
        if layer["class_name"] == "Dense":
            model.add(tf.keras.layers.Dense(c["units"], activation=c["activation"]))
        elif layer["class_name"] == "Rescaling":
            model.add(tf.keras.layers.Rescaling(c["scale"], c.get("offset", 0.0)))
        else:
            raise ValueError(f"the bench converts Dense and Rescaling layers, not {layer['class_name']}")
    values, at = [], 0
    for w in entries:
        n = int(np.prod(w["shape"]))
        values.append(weights[at : at + n].reshape(w["shape"]))
        at += n
    model.set_weights(values)
    return model


def score(model_dir: str, data: str, out: str, result: str) -> None:
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    def make_predict_fn():
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        model = keras_model(model_dir)

        def predict(x: np.ndarray) -> np.ndarray:
            return model(x, training=False).numpy()

        return predict

    spark = SparkSession.builder.appName("predict_batch_udf-bench").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(data)
    udf = predict_batch_udf(make_predict_fn, return_type=ArrayType(FloatType()), batch_size=4096, input_tensor_shapes=[[64]])
    scored = df.withColumn("prediction", udf(F.array(*[F.col(f"p{j}") for j in range(64)])))
    started = time.time()
    scored.write.mode("overwrite").parquet(out)
    score_ms = (time.time() - started) * 1000
    rows = spark.read.parquet(out).count()
    with open(result, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "score_ms": score_ms}, f)
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1] == "data":
        write_data(int(sys.argv[2]), sys.argv[3])
    else:
        score(*sys.argv[2:6])
