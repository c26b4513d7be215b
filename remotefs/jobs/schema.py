"""Inputs checked against a process's declared schema before submission (jsonschema).

Services declare inputs per field: OGC API - Processes as a map of input descriptions (each with
a JSON ``schema``, ``minOccurs``, ``maxOccurs``), Onyxia catalogs as a list of ``{name, type,
required}``. Both become one JSON Schema for the whole inputs object, so a submission is checked
in one pass and every wrong field is named at once. Inputs given by reference (``{"href"}``)
are not checked further; qualified values (``{"value", "mediaType"}``) are checked by value.
A schema the service got wrong is reported in the log and not enforced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from remotefs.jobs.errors import InputError

log = logging.getLogger("remotefs.jobs")

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
QUALIFIER_KEYS = frozenset({"value", "mediaType", "encoding", "schema"})


def ogc_inputs_schema(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """One object schema from OGC input descriptions (``minOccurs`` 0 makes an input optional)."""
    properties: dict[str, Any] = {}
    required = []
    for name, description in inputs.items():
        description = description if isinstance(description, Mapping) else {}
        schema = description.get("schema")
        schema = dict(schema) if isinstance(schema, Mapping) else {}
        most = description.get("maxOccurs", 1)
        if most == "unbounded" or (isinstance(most, int) and most > 1):
            many: dict[str, Any] = {"type": "array", "items": schema}
            if isinstance(most, int):
                many["maxItems"] = most
            schema = {"anyOf": [schema, many]}
        properties[name] = schema
        least = description.get("minOccurs", 1)
        if isinstance(least, int) and least >= 1:
            required.append(name)
    return _object(properties, required)


def declared_inputs_schema(declarations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One object schema from ``[{"name", "type", "required", ...}]`` declarations."""
    properties: dict[str, Any] = {}
    required = []
    for item in declarations:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        kind = item.get("type")
        properties[name] = {"type": kind} if kind in JSON_TYPES else {}
        if item.get("required"):
            required.append(name)
    return _object(properties, required)


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def check_inputs(process_id: str, schema: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` naming every input that does not fit ``schema``."""
    try:
        import jsonschema
    except ImportError:
        raise ImportError(
            "checking inputs needs jsonschema: pip install 'remotefs[jobs]', or pass validate=False"
        ) from None
    schema = dict(schema)
    properties = dict(schema.get("properties") or {})
    instance: dict[str, Any] = {}
    for name, value in inputs.items():
        if isinstance(value, Mapping) and "href" in value:
            properties[name] = {}
        elif isinstance(value, Mapping) and "value" in value and set(value) <= QUALIFIER_KEYS:
            value = value["value"]
        instance[name] = value
    if properties:
        schema["properties"] = properties
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        log.warning(
            "process %s declares an invalid input schema (%s); not checked", process_id, exc
        )
        return
    problems: dict[str, str] = {}
    for error in validator_class(schema).iter_errors(instance):
        where = "/".join(str(part) for part in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:
                if name not in error.instance:
                    problems.setdefault(_join(where, name), "required, but missing")
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = error.schema.get("properties", {})
            for name in error.instance:
                if name not in known:
                    problems.setdefault(_join(where, name), "not an input of this process")
        else:
            problems.setdefault(where or "(inputs)", error.message)
    if problems:
        raise InputError(process_id, dict(sorted(problems.items())))


def _join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name
