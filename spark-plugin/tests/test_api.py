"""The Python API's pure parts: option spelling, a search's trials from the session's result,
and the notebook table's rows."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from sparkring import api
from sparkring.api import RunError, Trial, _camel


def test_early_stopping_options_take_python_or_typescript_spelling() -> None:
    assert _camel({"min_steps": 1, "eta": 3, "maxSteps": 9}) == {"minSteps": 1, "eta": 3, "maxSteps": 9}
    assert _camel({"grace_steps": 2, "min_trials": 3}) == {"graceSteps": 2, "minTrials": 3}


def test_a_trial_reads_what_the_session_returns() -> None:
    t = Trial.from_dict(
        {"id": "3", "hparams": {"x": 3}, "status": "done", "metric": 0.5, "attempts": 1, "steps": 9,
         "stoppedEarly": False, "error": None, "executor": "executor 1 on vm", "backend": None, "result": {"x": 3}}
    )
    assert (t.id, t.metric, t.stopped_early, t.result) == ("3", 0.5, False, {"x": 3})
    assert Trial.from_dict({"id": "0", "status": "failed", "metric": None}).metric is None


class FakeSession:
    sparkContext = types.SimpleNamespace(master="local[2]")


def test_a_search_with_two_early_stopping_rules_is_refused_before_anything_starts(monkeypatch: Any) -> None:
    monkeypatch.setattr(api, "active_session", lambda df, spark, what: FakeSession())
    with pytest.raises(RunError, match="asha= or median=, not both") as e:
        api.launch("trial.ts", grid={"x": [1]}, asha={}, median={})
    assert e.value.kind == "input"


def test_the_notebook_table_has_a_row_per_worker_or_trial_in_order(monkeypatch: Any) -> None:
    shown: list[str] = []

    class Handle:
        def update(self, html: Any) -> None:
            shown.append(str(html))

    display = types.ModuleType("IPython.display")
    display.HTML = lambda text: text  # type: ignore[attr-defined]
    display.display = lambda html, display_id: Handle()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    from sparkring.caller_progress import NotebookProgress

    table = NotebookProgress()
    for trial in ("10", "9"):
        table.event({"type": "metrics", "rank": 0, "trial": trial, "step": 1, "metrics": {"loss": 1.0}})
    table.event({"type": "metrics", "rank": 1, "step": 4, "metrics": {"loss": 0.25}, "samplesPerSec": 812.4})
    last = shown[-1]
    assert last.index("trial 9") < last.index("trial 10") < last.index("worker 1")
    assert "<td>812</td>" in last
