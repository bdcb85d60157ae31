"""Compare an extracted document with a hand-checked ``expected/*.json`` file."""

from __future__ import annotations

import re
from typing import Any

INCLUDE_FIELDS = {
    "genres_include": ("genres", lambda v: v),
    "directors_include": ("directors", lambda v: v["id"]),
    "cast_include": ("cast", lambda v: v["id"]),
    "recommendations_include": ("recommendations", lambda v: v),
    "known_for_include": ("known_for", lambda v: v),
}
EXACT_FIELDS = ("imdb_id", "year", "runtime_minutes", "votes", "rating", "name", "birth_date", "death_date")


def _norm(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip().casefold()


def mismatches(doc: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Every way ``doc`` disagrees with ``expected``; empty when it agrees."""
    problems = []
    for key in EXACT_FIELDS:
        if key in expected and doc.get(key) != expected[key]:
            problems.append(f"{key}: got {doc.get(key)!r}, expected {expected[key]!r}")
    if "title_any" in expected:
        wanted = {_norm(t) for t in expected["title_any"]}
        if not wanted & {_norm(doc.get("title")), _norm(doc.get("original_title"))}:
            problems.append(
                f"title: got {doc.get('title')!r}/{doc.get('original_title')!r}, "
                f"expected one of {expected['title_any']}"
            )
    if "budget" in expected:
        budget = doc.get("budget") or {}
        got = (budget.get("amount"), budget.get("currency"))
        if got != (expected["budget"]["amount"], expected["budget"]["currency"]):
            problems.append(f"budget: got {got}, expected {expected['budget']}")
    for key, (field, pick) in INCLUDE_FIELDS.items():
        if key in expected:
            have = {pick(v) for v in doc.get(field) or []}
            missing = [v for v in expected[key] if v not in have]
            if missing:
                problems.append(f"{field}: missing {missing}")
    if "kind" in expected:
        # The kind a document is of shows in its id (nm…: a person, tt…: a title) and in its name field.
        kind = "person" if str(doc.get("imdb_id", "")).startswith("nm") and doc.get("name") else "title"
        if kind != expected["kind"] or (kind == "title" and not doc.get("title")):
            problems.append(f"kind: got a {kind} document, expected a {expected['kind']}")
    return problems
