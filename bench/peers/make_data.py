"""bench peers' data: ROWS x 784 float32 from N(0,1) with a fixed seed, labels argmax(F.W) for a fixed
random W (10 classes), where F is X itself (`linear`, the MLP's) or the means of X's 7x7 blocks as a
28x28 image (`blocks`, which a small CNN learns in a few epochs); as Parquet (an array<float> column `x` and `label`, in FILES files) for Spark
and as .npy for the peers that read arrays.

    python bench/peers/make_data.py DIR ROWS FILES linear|blocks
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out, rows, files, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(20261206)
x = rng.standard_normal((rows, 784), dtype=np.float32)
features = x if kind == "linear" else x.reshape(rows, 4, 7, 4, 7).mean(axis=(2, 4)).reshape(rows, 16)
w = rng.standard_normal((features.shape[1], 10), dtype=np.float32)
y = np.argmax(features @ w, axis=1).astype(np.int32)
os.makedirs(os.path.join(out, "parquet"), exist_ok=True)
np.save(os.path.join(out, "x.npy"), x)
np.save(os.path.join(out, "y.npy"), y)
for i, part in enumerate(np.array_split(np.arange(rows), files)):
    column = pa.FixedSizeListArray.from_arrays(pa.array(x[part].reshape(-1)), 784).cast(pa.list_(pa.float32()))
    table = pa.table({"x": column, "label": pa.array(y[part])})
    pq.write_table(table, os.path.join(out, "parquet", f"part-{i:05d}.parquet"))
