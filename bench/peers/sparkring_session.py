"""bench peers' warm-session rows: sparkring.allreduce from a PySpark session on
local-cluster[WORKERS,1,1024], RUNS times in the same session. The first run's clock starts with this
process (as the CLI's does); each later run's starts at its sparkring.allreduce call. One JSON line
per run: the runner's times plus `submit_at` and `returned_at`.

    python bench/peers/sparkring_session.py MODEL EPOCHS BATCH LR DATA_DIR WORKERS RUNS ENTRY EXPERIMENTS
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import local_cluster, now_ms, report, workload  # noqa: E402

started = now_ms()
w = workload()
runs, entry, experiments = int(sys.argv[7]), sys.argv[8], sys.argv[9]
import sparkring  # noqa: E402

spark = local_cluster(w.workers, {})
df = spark.read.parquet(os.path.join(w.data, "parquet"))
hparams = {"model": w.model, "epochs": w.epochs, "batch": w.batch, "lr": w.lr}
for i in range(runs):
    submit_at = started if i == 0 else now_ms()
    run = sparkring.allreduce(
        entry, df, num_workers=w.workers, hparams=hparams, experiments=experiments, name="peers", progress=False
    )
    report({**run.result, "submit_at": submit_at, "returned_at": now_ms()})
spark.stop()
