"""What spark-submit runs (spark-plugin/sparkring_submit.py): a training job (driver.py) or a
search (search.py), as the spec says."""

from __future__ import annotations

import json
import os
import sys

from sparkring import driver, predict_job, search
from sparkring.spec import JobSpec


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sparkring_submit.py SPEC.json", file=sys.stderr)
        return 2
    spec_path = argv[1]
    if not os.path.exists(spec_path) and os.path.exists(os.path.basename(spec_path)):
        spec_path = os.path.basename(spec_path)  # cluster mode: the spec came with the job's files
    with open(spec_path, encoding="utf-8") as f:
        raw = json.load(f)
    if raw.get("kind") == "search":
        result = search.run(search.SearchSpec.from_dict(raw))
    elif raw.get("kind") == "predict":
        result = predict_job.run(predict_job.PredictSpec.from_dict(raw))
    else:
        result = driver.run(JobSpec.from_dict(raw))
    if not result.get("ok"):
        error = result.get("error") or {}
        who = f"worker {error['rank']} failed: " if "rank" in error else ""
        # One line for whoever reads only the driver's output (a Livy batch's log).
        print(f"sparkring: {who}{error.get('message', 'the job failed')}", file=sys.stderr)
    return 0 if result.get("ok") else 1
