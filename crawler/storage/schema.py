"""The stored document schema, as a MongoDB ``$jsonSchema`` and as a Python validator.

One definition serves both: the collections get it as their validator, and the
validation pipeline checks items against the same rules before writing, so a
document MongoDB would refuse is dropped with a named reason instead.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema
import jsonschema_rs

# Every number the crawler stores is a count, a rank, a year or an amount: never negative, always 8 bytes at
# most. The bound is written as a double (2**63): collection options with 64-bit integers trip some servers
# (the embedded one stores them as JSON), and anything larger cannot be encoded in BSON anyway.
MAX_INT64 = float(2**63)
COUNT = {"bsonType": ["int", "long", "null"], "minimum": 0, "maximum": MAX_INT64}
COUNT_REQUIRED = {"bsonType": ["int", "long"], "minimum": 0, "maximum": MAX_INT64}
YEAR = {"bsonType": ["int", "long", "null"], "minimum": 1870, "maximum": 2100}
STRING = {"bsonType": ["string", "null"]}
TEXT = {"bsonType": "string", "minLength": 1}
STRINGS = {"bsonType": "array", "items": TEXT}
BOOL = {"bsonType": "bool"}
TITLE_ID = {"bsonType": "string", "pattern": "^tt[0-9]+$"}
NAME_ID = {"bsonType": "string", "pattern": "^nm[0-9]+$"}
PRECISION = {"enum": ["day", "month", "year", None]}
IMAGE = {"bsonType": ["string", "null"], "pattern": "^https://"}
TITLE_IDS = {"bsonType": "array", "items": TITLE_ID}


def closed(properties: dict[str, Any], required: list[str] | None = None, nullable: bool = False) -> dict[str, Any]:
    """An object with exactly these fields (nested values are never free-form)."""
    schema: dict[str, Any] = {
        "bsonType": ["object", "null"] if nullable else "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


REF = closed({"id": NAME_ID, "name": STRING}, ["id"])
REFS = {"bsonType": "array", "items": REF}
CAST = {
    "bsonType": "array",
    "items": closed(
        {
            "id": NAME_ID, "name": STRING, "characters": STRINGS, "order": COUNT,
            # credit notes (crawler/parsing/pages/credits.py), never part of the characters' names
            "as_name": STRING, "uncredited": BOOL, "voice": BOOL, "episodes": COUNT,
            "years": closed({"start": YEAR, "end": YEAR}, nullable=True), "notes": STRINGS,
        },
        ["id"],
    ),
}  # fmt: skip
MONEY = closed({"amount": COUNT_REQUIRED, "currency": STRING, "estimated": BOOL}, ["amount"], nullable=True)
GROSS = closed(
    {"amount": COUNT_REQUIRED, "currency": STRING, "estimated": BOOL, "region": {"enum": ["worldwide", "domestic"]}},
    ["amount"],
    nullable=True,
)
AWARDS = closed(
    {
        "wins": COUNT,
        "nominations": COUNT,
        "prestigious": closed({"award": STRING, "wins": COUNT, "nominations": COUNT}),
    },
    nullable=True,
)
SERIES = {
    "anyOf": [
        {"bsonType": "null"},
        closed(
            {
                "series_id": TITLE_ID,
                "series_title": STRING,
                "season": COUNT,
                "episode": COUNT,
                "series_start_year": YEAR,
                "series_end_year": YEAR,
                "previous_episode": {"bsonType": ["string", "null"], "pattern": "^tt[0-9]+$"},
                "next_episode": {"bsonType": ["string", "null"], "pattern": "^tt[0-9]+$"},
            },
            ["series_id"],
        ),
        closed({"episodes": COUNT, "seasons": COUNT}),
    ]
}
METADATA = {
    "layout": {"enum": ["current", "legacy", None]},
    "fetched_via": {"enum": ["http", "browser", None]},
    "schema_version": COUNT_REQUIRED,
    "content_hash": STRING,
    "richness": COUNT,
    "crawl_run_id": STRING,
    "first_seen": {"bsonType": ["date", "null"]},
    "last_seen": {"bsonType": ["date", "null"]},
    "last_changed": {"bsonType": ["date", "null"]},
}

TITLE_SCHEMA: dict[str, Any] = {
    "bsonType": "object",
    "required": ["_id", "imdb_id", "title", "schema_version"],
    "properties": {
        "_id": TITLE_ID,
        "imdb_id": TITLE_ID,
        "title": TEXT,
        "original_title": STRING,
        "title_type": STRING,
        "year": YEAR,
        "end_year": YEAR,
        "rating": {"bsonType": ["double", "int", "null"], "minimum": 1, "maximum": 10},
        "votes": COUNT,
        "votes_rounded": BOOL,
        "metascore": {"bsonType": ["int", "long", "null"], "minimum": 0, "maximum": 100},
        "popularity_rank": COUNT,
        "top_rank": {"bsonType": ["int", "long", "null"], "minimum": 1, "maximum": 250},
        "user_reviews": COUNT,
        "critic_reviews": COUNT,
        "certificate": STRING,
        "runtime_minutes": COUNT,
        "genres": STRINGS,
        "release_date": STRING,
        "release_date_precision": PRECISION,
        "release_country": STRING,
        "plot": STRING,
        "storyline": STRING,
        "directors": REFS,
        "writers": REFS,
        "stars": REFS,
        "cast": CAST,
        "recommendations": TITLE_IDS,
        "keywords": STRINGS,
        "taglines": STRINGS,
        "countries": STRINGS,
        "languages": STRINGS,
        "akas": STRINGS,
        "filming_locations": STRINGS,
        "budget": MONEY,
        "gross": GROSS,
        "companies": {"bsonType": "array", "items": closed({"id": STRING, "name": TEXT}, ["name"])},
        "sound_mix": STRINGS,
        "color": STRINGS,
        "aspect_ratio": STRING,
        "awards_summary": AWARDS,
        "series": SERIES,
        "poster_url": IMAGE,
        **METADATA,
    },
}

PERSON_SCHEMA: dict[str, Any] = {
    "bsonType": "object",
    "required": ["_id", "imdb_id", "name", "schema_version"],
    "properties": {
        "_id": NAME_ID,
        "imdb_id": NAME_ID,
        "name": TEXT,
        "birth_date": STRING,
        "birth_date_precision": PRECISION,
        "birth_place": STRING,
        "death_date": STRING,
        "death_date_precision": PRECISION,
        "death_place": STRING,
        "alternate_names": STRINGS,
        "headshot_url": IMAGE,
        "professions": STRINGS,
        "known_for": TITLE_IDS,
        "filmography": {
            "bsonType": "array",
            "items": closed({"title_id": TITLE_ID, "category": STRING, "year": YEAR}, ["title_id"]),
        },
        "bio": STRING,
        **METADATA,
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
            if "date" in names:  # written by the server-side writer only, never by an item: no client rule
                continue
            types = list(dict.fromkeys(_BSON_TO_JSON[n] for n in names))
            converted["type"] = types[0] if len(types) == 1 else types
        elif key == "properties":
            converted[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            converted[key] = to_json_schema(value)
    return converted


# Compiled once: validation runs on every item of every crawl. fastjsonschema (plain Python, Python's regular
# expressions) has the last word and names the broken rule; jsonschema_rs, the same rules in Rust and ~5× faster
# on a cast list, answers first, and only a document it refuses (or cannot read) is checked again. Its yes is
# never wider than fastjsonschema's: a differential fuzz test (tests/test_schema_validators.py) holds it to that.
VALIDATORS = {name: fastjsonschema.compile(to_json_schema(schema)) for name, schema in SCHEMAS.items()}
FAST_VALIDATORS = {name: jsonschema_rs.Draft7Validator(to_json_schema(schema)) for name, schema in SCHEMAS.items()}


def first_error(collection: str, document: dict[str, Any]) -> str | None:
    """A short reason (``field: rule``) when the document breaks the schema, else None."""
    try:
        if FAST_VALIDATORS[collection].is_valid(document):
            return None
    except Exception:  # a value it cannot read (bytes, sets, keys that are not text…): the slow check decides
        pass
    try:
        VALIDATORS[collection](document)
    except fastjsonschema.JsonSchemaValueException as error:
        where = (error.name or "data").removeprefix("data").lstrip(".") or "document"
        if error.rule == "required":
            missing = [key for key in error.rule_definition or [] if key not in document]
            where = missing[0] if missing else where
        return f"{where}: {error.rule}"
    return None
