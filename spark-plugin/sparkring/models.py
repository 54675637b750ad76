"""`sparkring.register(run, name)`: a trained model as the next version of NAME in a model
repository `sparkring serve` serves (src/serve/repository.ts; the same as
`sparkring models register RUN --name NAME`). The version keeps the run id, its hyperparameters,
its final metrics and the model's signature."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Optional, Union

from sparkring.error_codes import CODES, MODEL_REPO
from sparkring.executor.runtime_home import CLI, node_binary, runtime_home


def register(
    run: Union[str, Any],
    name: str,
    repo: str = "models",
    experiments: Optional[str] = None,
) -> dict[str, Any]:
    """Adds `run`'s model (a Run from allreduce, a run folder or id, or a folder ctx.saveModel wrote)
    as the next version of `name` in `repo`; returns {"name", "version", "dir"}."""
    from sparkring.api import RunError

    ref = getattr(run, "dir", run)
    if not isinstance(ref, str) or not ref:
        raise RunError(f"register takes a Run, a run folder or id, or a model folder, not {run!r}", "input", MODEL_REPO)
    home = runtime_home()
    args = [node_binary(), os.path.join(home, CLI), "models", "register", ref, "--name", name, "--repo", repo, "--json"]
    if experiments:
        args += ["--experiments", experiments]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [f"sparkring models register exited {done.returncode}"])[-1]
        message = message.removeprefix("sparkring: ")
        code = MODEL_REPO if done.returncode == 2 else None
        kind = CODES[MODEL_REPO]["kind"] if code else "setup"
        raise RunError(message, kind, code)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
