"""The TensorFlow a Node worker trains on: the one of the Python this task runs in.

Spark ML clusters usually have TensorFlow in the executors' Python. Its package directory holds the
C libraries (libtensorflow_cc.so.2, libtensorflow_framework.so.2) that tfjs-node's binding links by
soname; the worker finds them on LD_LIBRARY_PATH, which has to be set before the Node process
starts (the dynamic loader reads it once). NVIDIA's wheels beside a GPU TensorFlow
(site-packages/nvidia/*/lib) go there too. The package is found, not imported: importing
tensorflow costs seconds and hundreds of MB in a process that never uses it.

Threads: each worker's TensorFlow gets the cores its task was given (spark.task.cpus), so workers
sharing a host do not oversubscribe it. TensorFlow reads TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS when its context is created; values the user set (spark.executorEnv.*) stay.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from typing import Mapping, Optional

TF_LIBRARY = "libtensorflow_cc.so.2"


def tensorflow_dir() -> Optional[str]:
    """The directory of this Python's tensorflow package when it holds the C library, else None."""
    try:
        spec = importlib.util.find_spec("tensorflow")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    directory = os.path.dirname(spec.origin)
    return directory if os.path.exists(os.path.join(directory, TF_LIBRARY)) else None


def nvidia_library_dirs(tf_dir: str) -> list[str]:
    """CUDA and cuDNN libraries from NVIDIA's wheels installed beside TensorFlow (tensorflow[and-cuda])."""
    return sorted(glob.glob(os.path.join(os.path.dirname(tf_dir), "nvidia", "*", "lib")))


def tensorflow_env(cpus: int, env: Mapping[str, str], tf_dir: Optional[str] = None) -> dict[str, str]:
    """The variables a Node worker needs to train on this Python's TensorFlow with `cpus` threads."""
    out: dict[str, str] = {}
    threads = str(max(1, cpus))
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        out[name] = env.get(name) or threads
    # TensorFlow's INFO lines stay out of the worker's log; warnings and errors show. (Its start-up
    # banner, printed before its logging is set up, still goes there.)
    out["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL") or "1"
    out["SPARKRING_TF_PYTHON"] = sys.executable
    found = tf_dir if tf_dir is not None else tensorflow_dir()
    if found is None:
        return out
    dirs = [found, *nvidia_library_dirs(found)]
    previous = env.get("LD_LIBRARY_PATH")
    out["LD_LIBRARY_PATH"] = os.pathsep.join(dirs + ([previous] if previous else []))
    out["SPARKRING_TF_DIR"] = found
    return out
