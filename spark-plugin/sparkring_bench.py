"""The file given to spark-submit for the benchmarks: runs sparkring.bench."""

import runpy

if __name__ == "__main__":
    runpy.run_module("sparkring.bench", run_name="__main__")
