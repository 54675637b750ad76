"""spec.py's JobSpec and search_tasks.py's SearchSpec against their contracts, job-spec.schema.json and
search-spec.schema.json (made from src/client/jobs/job-spec.ts by `npm run spec-schema`): a field the two
sides disagree on fails here."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from typing import Any

import pytest

import sparkring
from sparkring.executor import search_tasks
from sparkring.driver import spec

# Each spec class, its schema file, and the schema's fields only the client reads.
SPECS = [(spec.JobSpec, "job-spec", spec.CLIENT_ONLY), (search_tasks.SearchSpec, "search-spec", search_tasks.CLIENT_ONLY)]
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def schema(name: str) -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(sparkring.__file__), f"{name}.schema.json"), encoding="utf-8") as f:
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


@pytest.mark.parametrize("cls,name,client_only", SPECS)
def test_every_field_python_reads_is_in_the_schema_required_and_of_its_type(cls: Any, name: str, client_only: tuple[str, ...]) -> None:
    s = schema(name)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = camel(f.name)
        if key not in s["properties"] and f.name.endswith("_key"):
            continue  # SearchSpec's queue keys come from queueKeys, checked below
        assert key in s["properties"], f"{cls.__name__} reads {key}, which {name}.schema.json does not have"
        assert key in s["required"], f"{key} is optional in the schema; spec.py reads it as written"
        want = schema_types(s["properties"][key])
        have = json_types(hints[f.name])
        if "number" in have:
            have |= {"integer"}
        assert want <= have, f"{key}: the schema says {sorted(want)}, {cls.__name__} reads {sorted(have)}"


@pytest.mark.parametrize("cls,name,client_only", SPECS)
def test_every_schema_field_is_read_by_python_or_named_as_the_clients_own(cls: Any, name: str, client_only: tuple[str, ...]) -> None:
    read = {camel(f.name) for f in dataclasses.fields(cls)}
    if cls is search_tasks.SearchSpec:
        read.add("queueKeys")
        assert set(schema(name)["properties"]["queueKeys"]["properties"]) == {"pending", "running", "client"}
    for key in schema(name)["properties"]:
        assert key in read or key in client_only, f"{name}.schema.json has {key}: read it in {cls.__name__} or add it to CLIENT_ONLY"


@pytest.mark.parametrize("cls,name,client_only", SPECS)
def test_python_has_no_defaults_of_its_own(cls: Any, name: str, client_only: tuple[str, ...]) -> None:
    # The client writes every field; defaults live once, in src/client/jobs/options.ts and search-options.ts.
    with_default = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert with_default == []


def test_spec_reads_a_complete_spec() -> None:
    job = spec.JobSpec.from_dict(
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
            "partitionBy": None,
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
    assert job.workers == 2 and job.redis is not None and job.redis.url == "redis://127.0.0.1:5" and job.gpus_per_worker == 1
    assert job.data is None and job.attempt == 0 and job.worker == {"peerTimeoutMs": 30000}
