"""`sparkring.register` through the built CLI (src/serve/repository.ts does the work), and the
inference log's Parquet writer. The model folder here is one a run would leave: model.json,
weights.bin and signature.json beside the run's spec.json and result.json."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sparkring
from sparkring import inference_log
from sparkring.api import RunError

SIGNATURE = {
    "format": "sparkring.signature",
    "features": ["a", "b"],
    "inputShape": [2],
    "input": {"name": "input"},
    "label": "y",
    "output": {"name": "prediction", "shape": [1]},
}


def a_run(tmp: Path) -> Path:
    run = tmp / "experiments" / "app-1" / "run.1" / "train"
    (run / "model").mkdir(parents=True)
    (run / "model" / "model.json").write_text(json.dumps({"modelTopology": {}, "weightsManifest": []}))
    (run / "model" / "weights.bin").write_bytes(b"")
    (run / "model" / "signature.json").write_text(json.dumps(SIGNATURE))
    (run / "spec.json").write_text(json.dumps({"kind": "train", "hparams": {"lr": 0.1}}))
    (run / "result.json").write_text(json.dumps({"ok": True, "metrics": {"loss": 0.25, "acc": 0.9}}))
    return run


def test_register_adds_versions_that_trace_back_to_the_run(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    repo = str(tmp_path / "models")
    first = sparkring.register(str(run), "digits", repo=repo, experiments=str(tmp_path / "experiments"))
    second = sparkring.register(str(run / "model"), "digits", repo=repo)
    assert (first["name"], first["version"], second["version"]) == ("digits", 1, 2)
    info = json.loads((Path(first["dir"]) / "version.json").read_text())
    assert info["source"]["run"] == "app-1/run.1/train"
    assert info["hparams"] == {"lr": 0.1}
    assert info["metrics"] == {"loss": 0.25, "acc": 0.9}
    assert info["signature"]["output"] == {"name": "prediction", "shape": [1]}


def test_register_refuses_with_the_cause(tmp_path: Path) -> None:
    with pytest.raises(RunError) as e:
        sparkring.register(str(tmp_path / "nowhere"), "digits", repo=str(tmp_path / "models"))
    assert e.value.code == "SR_MODEL_REPO"
    assert e.value.kind == "input"
    assert "no model at" in str(e.value)


def test_the_log_export_types_its_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {
        "stream_id": "1-0", "id": "r1", "model": "digits", "version": "2", "via": "canary", "protocol": "grpc",
        "latency_ms": "1.250", "queue_ms": "0.100", "ts": "1796600000000", "rows": "3",
        "inputs": '{"shape":[3,2]}', "outputs": "{}",
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(entry) + "\n"))
    out = tmp_path / "log.parquet"
    assert inference_log.main([str(out)]) == 0
    row = pq.read_table(out).to_pylist()[0]
    assert (row["version"], row["rows"], row["latency_ms"], row["via"]) == (2, 3, 1.25, "canary")
    assert row["ts"].year == 2026
