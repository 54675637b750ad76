"""spec.py against the job spec's contract, job-spec.schema.json (made from src/client/job-spec.ts by
`npm run spec-schema`): a field the two sides disagree on fails here."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from typing import Any

import sparkring
from sparkring.spec import CLIENT_ONLY, JobSpec

SCHEMA_PATH = os.path.join(os.path.dirname(sparkring.__file__), "job-spec.schema.json")
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def json_types(annotation: Any) -> set[str]:
    """The JSON types a field's annotation admits: Optional[str] -> {"string", "null"}."""
    args = typing.get_args(annotation)
    if type(None) in args:
        return {t for a in args if a is not type(None) for t in json_types(a)} | {"null"}
    origin = typing.get_origin(annotation) or annotation
    return {JSON_TYPES.get(origin, "object")}


def schema_types(prop: dict[str, Any]) -> set[str]:
    if "anyOf" in prop:
        return {t for p in prop["anyOf"] for t in schema_types(p)}
    t = prop.get("type", "object")
    found = set(t) if isinstance(t, list) else {t}
    # A JSON integer is a number too: float fields may hold either.
    return found


def test_every_field_python_reads_is_in_the_schema_required_and_of_its_type() -> None:
    s = schema()
    hints = typing.get_type_hints(JobSpec)
    for f in dataclasses.fields(JobSpec):
        key = camel(f.name)
        assert key in s["properties"], f"spec.py reads {key}, which job-spec.schema.json does not have"
        assert key in s["required"], f"{key} is optional in the schema; spec.py reads it as written"
        want = schema_types(s["properties"][key])
        have = json_types(hints[f.name])
        if "number" in have:
            have |= {"integer"}
        assert want <= have, f"{key}: the schema says {sorted(want)}, spec.py reads {sorted(have)}"


def test_every_schema_field_is_read_by_python_or_named_as_the_clients_own() -> None:
    read = {camel(f.name) for f in dataclasses.fields(JobSpec)}
    for key in schema()["properties"]:
        assert key in read or key in CLIENT_ONLY, f"job-spec.schema.json has {key}: read it in spec.py or add it to CLIENT_ONLY"


def test_python_has_no_defaults_of_its_own() -> None:
    # The client writes every field; defaults live once, in src/client/options.ts.
    with_default = [f.name for f in dataclasses.fields(JobSpec) if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert with_default == []


def test_spec_reads_a_complete_spec() -> None:
    spec = JobSpec.from_dict(
        {
            "runId": "r",
            "name": "n",
            "entry": "/e.mjs",
            "workers": 2,
            "secret": "s",
            "node": "node",
            "runtimeMain": "/m.js",
            "bundle": None,
            "experiments": "/x",
            "resultPath": "/r.json",
            "attempt": 0,
            "data": None,
            "hparams": {},
            "gpusPerWorker": 1,
            "slotWaitSeconds": 30,
            "redis": {"url": "redis://127.0.0.1:5", "stream": "s", "ca": None},
            "worker": {"peerTimeoutMs": 30000},
            "releaseExecutors": True,
            "runDir": None,
            "master": None,
            "maxAttempts": 1,
            "heartbeatTimeoutMs": 60000,
        }
    )
    assert spec.workers == 2 and spec.redis is not None and spec.redis.url == "redis://127.0.0.1:5" and spec.gpus_per_worker == 1
    assert spec.data is None and spec.attempt == 0 and spec.worker == {"peerTimeoutMs": 30000}
