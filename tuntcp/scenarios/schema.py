"""The JSON Schemas of the scenario reports (``schemas/<scenario>.json``, one per report kind)
and a small validator for the part of JSON Schema (2020-12) they use.

    errors = validate(report)          # [] when report.json matches its kind's schema

Supported keywords: ``$ref`` (``common.json``, ``common.json#/$defs/x``, ``#/$defs/x``),
``allOf``, ``type``, ``enum``, ``required``, ``properties``, ``additionalProperties``,
``minProperties``, ``items``; annotations (``$schema``, ``$id``, ``$defs``, ``title``,
``description``) are skipped. Any other keyword is refused, so a schema cannot quietly ask
for a check this validator does not make.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent / "schemas"
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}


class SchemaError(Exception):
    """A schema uses something this validator does not implement (a bug in the schema)."""


@cache
def load(name: str) -> dict:
    """The schema file ``name`` (``slow-accept`` or ``slow-accept.json``)."""
    return json.loads((HERE / (name if name.endswith(".json") else name + ".json")).read_text())


def kinds() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json") if p.stem != "common")


def validate(report: dict, kind: str | None = None) -> list[str]:
    """Every way ``report`` breaks its kind's schema (``report["scenario"]`` unless given)."""
    kind = kind or report.get("scenario")
    if kind not in kinds():
        return [f"no schema for report kind {kind!r} (known: {', '.join(kinds())})"]
    errors: list[str] = []
    _check(report, load(kind), f"{kind}.json", "$", errors)
    return errors


def _resolve(ref: str, doc: str) -> tuple[dict, str]:
    file, _, frag = ref.partition("#")
    file = file or doc
    node = load(file)
    for part in filter(None, frag.split("/")):
        node = node[part]
    return node, file


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _check(value, schema: dict, doc: str, where: str, errors: list[str]) -> None:
    unknown = set(schema) - _ANNOTATIONS - set(_KEYWORDS)
    if unknown:
        raise SchemaError(f"{doc}: unsupported keyword(s) {sorted(unknown)} at {where}")
    for key in schema:
        if key in _KEYWORDS:
            _KEYWORDS[key](value, schema, doc, where, errors)


def _ref(value, schema, doc, where, errors):
    target, file = _resolve(schema["$ref"], doc)
    _check(value, target, file, where, errors)


def _all_of(value, schema, doc, where, errors):
    for sub in schema["allOf"]:
        _check(value, sub, doc, where, errors)


def _type(value, schema, doc, where, errors):
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_is_type(value, n) for n in names):
        errors.append(f"{where}: {type(value).__name__} {value!r:.60}, want {' or '.join(names)}")


def _enum(value, schema, doc, where, errors):
    if value not in schema["enum"]:
        errors.append(f"{where}: {value!r:.60} not one of {schema['enum']}")


def _required(value, schema, doc, where, errors):
    if isinstance(value, dict):
        errors += [f"{where}: missing {k!r}" for k in schema["required"] if k not in value]


def _properties(value, schema, doc, where, errors):
    if isinstance(value, dict):
        for k, sub in schema["properties"].items():
            if k in value:
                _check(value[k], sub, doc, f"{where}.{k}", errors)


def _additional(value, schema, doc, where, errors):
    if not isinstance(value, dict):
        return
    extra = [k for k in value if k not in schema.get("properties", {})]
    rule = schema["additionalProperties"]
    if rule is False:
        errors += [f"{where}: unexpected key {k!r}" for k in extra]
    elif isinstance(rule, dict):
        for k in extra:
            _check(value[k], rule, doc, f"{where}.{k}", errors)


def _min_properties(value, schema, doc, where, errors):
    if isinstance(value, dict) and len(value) < schema["minProperties"]:
        errors.append(f"{where}: fewer than {schema['minProperties']} keys")


def _items(value, schema, doc, where, errors):
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, schema["items"], doc, f"{where}[{i}]", errors)


_KEYWORDS = {"$ref": _ref, "allOf": _all_of, "type": _type, "enum": _enum, "required": _required,
             "properties": _properties, "additionalProperties": _additional,
             "minProperties": _min_properties, "items": _items}


def assert_matches_schema(report: dict, outdir=None) -> None:
    """For tests and CI: ``report`` and, given ``outdir``, the report.json written there both
    match the schema of their kind (AssertionError listing the first mismatches)."""
    docs = [("returned report", report)]
    if outdir is not None:
        docs.append((f"{outdir}/report.json", json.loads((Path(outdir) / "report.json").read_text())))
    for what, doc in docs:
        errors = validate(doc)
        assert not errors, f"{what} breaks its schema: " + "; ".join(errors[:8])
