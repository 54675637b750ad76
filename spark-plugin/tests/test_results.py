"""Each kind's driver result against its contract, <kind>-result.schema.json (made from
src/client/jobs/<kind>.ts by `npm run spec-schema`), as test_spec.py checks the specs: the
envelope's failed result fits every kind; a search's middle gives an ok result that fits; and the
fields each driver's middle writes are those its ok schema names, every required one among them."""

from __future__ import annotations

import ast
import inspect
import json
import os
import textwrap
from types import SimpleNamespace
from typing import Any, Callable, Optional

import jsonschema
import pytest

import sparkring
from sparkring.driver import lifecycle, predict_job, search_rounds
from sparkring.error_codes import DATA_PATH, INTERRUPTED
from sparkring.driver.envelope import job_envelope
from sparkring.failures import JobError

KINDS = ("train", "search", "predict")
# The fields the envelope itself writes into every result.
ENVELOPE_FIELDS = {"ok", "appId", "versions", "runMs", "error"}
# Each kind's middle: the functions that fill its result.
MIDDLES: dict[str, list[Callable[..., Any]]] = {
    "train": [lifecycle.run_job],
    "search": [search_rounds.run_search, search_rounds.run_rounds],
    "predict": [predict_job.score],
}


def schema(kind: str) -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(sparkring.__file__), f"{kind}-result.schema.json"), encoding="utf-8") as f:
        return json.load(f)


def ok_variant(kind: str) -> dict[str, Any]:
    return next(v for v in schema(kind)["oneOf"] if v["properties"]["ok"].get("const") is True)


def fake_spark() -> Any:
    """A DriverSpark (spark_session.py) as far as the envelope reads one."""
    spark = SimpleNamespace(version="3.5.6")
    return SimpleNamespace(spark=spark, app_id="app-20261206-0001", master="local-cluster[2,1,1024]", connect=False)


def enveloped(tmp_path: Any, body: Callable[[Any], None]) -> dict[str, Any]:
    path = str(tmp_path / "result.json")
    try:
        with job_envelope(fake_spark(), path, "secret", None) as job:
            body(job)
    except KeyboardInterrupt:
        pass
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def raise_(e: BaseException) -> Callable[[Any], None]:
    def body(_job: Any) -> None:
        raise e

    return body


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_result_fits_every_kind(kind: str, tmp_path: Any) -> None:
    for failure in (JobError("--data /x: no such path", DATA_PATH), RuntimeError("Job aborted due to stage failure"), KeyboardInterrupt()):
        result = enveloped(tmp_path, raise_(failure))
        jsonschema.validate(result, schema(kind))
        assert result["ok"] is False and result["error"]["message"]


def test_an_interrupt_is_reported_and_raised_again(tmp_path: Any) -> None:
    with pytest.raises(KeyboardInterrupt):
        with job_envelope(fake_spark(), str(tmp_path / "r.json"), "s", None):
            raise KeyboardInterrupt()
    with open(tmp_path / "r.json", encoding="utf-8") as f:
        assert json.load(f)["error"]["code"] == INTERRUPTED


def test_a_middle_that_never_says_ok_is_not_ok(tmp_path: Any) -> None:
    assert enveloped(tmp_path, lambda job: job.result.update(rows=3))["ok"] is False


class EmptyQueue:
    def llen(self, _key: str) -> int:
        return 0

    def scard(self, _key: str) -> int:
        return 0


def test_a_search_middle_gives_an_ok_result_that_fits(tmp_path: Any) -> None:
    spec = SimpleNamespace(pending_key="p", running_key="r", client_key="c", executors=2, run_id="x")

    def body(job: Any) -> None:
        job.result.update(dir=str(tmp_path), executors=2)
        search_rounds.run_rounds(SimpleNamespace(spark=None), spec, EmptyQueue(), SimpleNamespace(), job, time_release=False)

    result = enveloped(tmp_path, body)
    assert result["ok"] is True
    jsonschema.validate(result, schema("search"))


def written_fields(fn: Callable[..., Any]) -> set[str]:
    """The keys a function writes into a dict named `result`: result["x"] = ..., result.update(x=...)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and getattr(node.value, "id", None) == "result":
            key: Optional[Any] = getattr(node.slice, "value", None)
            if isinstance(key, str):
                found.add(key)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
            if getattr(node.func.value, "id", None) == "result" or getattr(node.func.value, "attr", None) == "result":
                found.update(k.arg for k in node.keywords if k.arg)
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_each_middle_writes_the_fields_its_ok_schema_names(kind: str) -> None:
    variant = ok_variant(kind)
    written = set().union(*(written_fields(f) for f in MIDDLES[kind]))
    for key in written - ENVELOPE_FIELDS:
        assert key in variant["properties"], f"the {kind} driver writes {key}, which {kind}-result.schema.json does not have"
    missing = set(variant["required"]) - ENVELOPE_FIELDS - written
    assert not missing, f"{kind}-result.schema.json requires {sorted(missing)}, which the {kind} driver never writes"
