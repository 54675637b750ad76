"""Datasets that ship offline, written as parquet for the demo and tests."""

from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_digits(path: str, test_fraction: float = 0.2, seed: int = 0) -> int:
    """scikit-learn's 1797 handwritten digits: p0..p63 (0-16), label, is_test (held-out split)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    is_test = (rng.random(len(digits.target)) < test_fraction).astype(np.int32)
    columns = {f"p{i}": digits.data[:, i].astype(np.float32) for i in range(64)}
    columns["label"] = digits.target.astype(np.int32)
    columns["is_test"] = is_test
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return len(digits.target)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "digits":
        print("usage: python -m sparkring.datasets digits OUT.parquet", file=sys.stderr)
        sys.exit(2)
    print(write_digits(sys.argv[2]))
