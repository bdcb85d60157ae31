"""The stored document schema, as a MongoDB ``$jsonSchema`` and as a Python validator.

One definition serves both: the collections get it as their validator, and the
validation pipeline checks items against the same rules before writing, so a
document MongoDB would refuse is dropped with a named reason instead.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema

INT = {"bsonType": ["int", "long", "null"]}
NUMBER = {"bsonType": ["double", "int", "long", "null"]}
STRING = {"bsonType": ["string", "null"]}
STRINGS = {"bsonType": "array", "items": {"bsonType": "string"}}
REF: dict[str, Any] = {
    "bsonType": "object",
    "required": ["id"],
    "properties": {"id": {"bsonType": "string", "pattern": "^nm[0-9]+$"}, "name": STRING},
}
REFS = {"bsonType": "array", "items": REF}
MONEY = {
    "bsonType": ["object", "null"],
    "required": ["amount"],
    "properties": {"amount": {"bsonType": ["int", "long"]}, "currency": STRING},
}

TITLE_SCHEMA: dict[str, Any] = {
    "bsonType": "object",
    "required": ["_id", "imdb_id", "title", "schema_version"],
    "properties": {
        "_id": {"bsonType": "string", "pattern": "^tt[0-9]+$"},
        "imdb_id": {"bsonType": "string", "pattern": "^tt[0-9]+$"},
        "title": {"bsonType": "string", "minLength": 1},
        "original_title": STRING,
        "title_type": STRING,
        "year": {"bsonType": ["int", "long", "null"], "minimum": 1870, "maximum": 2100},
        "end_year": INT,
        "rating": {"bsonType": ["double", "int", "null"], "minimum": 1, "maximum": 10},
        "votes": {"bsonType": ["int", "long", "null"], "minimum": 0},
        "runtime_minutes": {"bsonType": ["int", "long", "null"], "minimum": 0},
        "metascore": INT,
        "genres": STRINGS,
        "directors": REFS,
        "writers": REFS,
        "stars": REFS,
        "cast": {
            "bsonType": "array",
            "items": {**REF, "properties": {**REF["properties"], "characters": STRINGS, "order": INT}},
        },
        "recommendations": {"bsonType": "array", "items": {"bsonType": "string", "pattern": "^tt[0-9]+$"}},
        "budget": MONEY,
        "gross": MONEY,
        "schema_version": {"bsonType": ["int", "long"]},
    },
}

PERSON_SCHEMA: dict[str, Any] = {
    "bsonType": "object",
    "required": ["_id", "imdb_id", "name", "schema_version"],
    "properties": {
        "_id": {"bsonType": "string", "pattern": "^nm[0-9]+$"},
        "imdb_id": {"bsonType": "string", "pattern": "^nm[0-9]+$"},
        "name": {"bsonType": "string", "minLength": 1},
        "birth_date": STRING,
        "death_date": STRING,
        "professions": STRINGS,
        "known_for": {"bsonType": "array", "items": {"bsonType": "string", "pattern": "^tt[0-9]+$"}},
        "schema_version": {"bsonType": ["int", "long"]},
    },
}

SCHEMAS = {"titles": TITLE_SCHEMA, "people": PERSON_SCHEMA}

_BSON_TO_JSON = {
    "string": "string",
    "int": "integer",
    "long": "integer",
    "double": "number",
    "bool": "boolean",
    "null": "null",
    "array": "array",
    "object": "object",
}


def to_json_schema(schema: Any) -> Any:
    """The same rules in JSON Schema terms (``bsonType`` → ``type``)."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "bsonType":
            names = value if isinstance(value, list) else [value]
            types = list(dict.fromkeys(_BSON_TO_JSON[n] for n in names))
            converted["type"] = types[0] if len(types) == 1 else types
        elif key == "properties":
            converted[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            converted[key] = to_json_schema(value)
    return converted


# Compiled to plain Python once: validation runs on every item of every crawl.
VALIDATORS = {name: fastjsonschema.compile(to_json_schema(schema)) for name, schema in SCHEMAS.items()}


def first_error(collection: str, document: dict[str, Any]) -> str | None:
    """A short reason (``field: rule``) when the document breaks the schema, else None."""
    try:
        VALIDATORS[collection](document)
    except fastjsonschema.JsonSchemaValueException as error:
        where = (error.name or "data").removeprefix("data").lstrip(".") or "document"
        if error.rule == "required":
            missing = [key for key in error.rule_definition or [] if key not in document]
            where = missing[0] if missing else where
        return f"{where}: {error.rule}"
    return None
