"""The change log: what changed in a stored document, field by field, for consumers (``changes``).

When a page's content differs from the stored document, the writer records one
entry::

    {"imdb_id": "tt0133093", "collection": "titles", "time": <when the page was seen>,
     "crawl_run_id": "…", "fields": {"rating": [8.6, 8.7], "votes": [1900000, 1956171],
                                     "cast": {"added": ["nm…"], "removed": [], "count": [40, 41]}}}

Scalars and short lists of scalars are ``[old, new]``; longer lists, and lists
of objects (cast, credits, filmography), are summarised by their ids (or
values): ``added``, ``removed`` and ``count`` ``[old, new]``. Entries expire
after ``CHANGES_TTL`` (a TTL index on ``time``); ``{imdb_id, time}`` is
indexed for the history of one title. Queries are in docs/schema.md.
"""

from __future__ import annotations

import json
from typing import Any

from crawler.storage.documents import NOT_CONTENT

# Fields that say when and how a document was stored, not what the page says (and how it was fetched).
NOT_DATA = NOT_CONTENT | {
    "_id", "imdb_id", "content_hash", "richness", "first_seen", "last_seen", "last_changed", "crawl_run_id",
}  # fmt: skip
SHORT_LIST = 10  # lists of scalars up to this long are shown whole, [old, new]
MAX_LISTED = 100  # ids listed under added / removed, at most


def _key(value: Any) -> str:
    """What identifies a list entry: its id (cast, credits), its title (filmography), else the value itself."""
    if isinstance(value, dict):
        for name in ("id", "title_id"):
            if isinstance(value.get(name), str):
                return value[name]
        return json.dumps(value, sort_keys=True, default=str)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def list_change(before: list[Any], after: list[Any]) -> Any:
    scalars = all(not isinstance(v, (dict, list)) for v in (*before, *after))
    if scalars and len(before) <= SHORT_LIST and len(after) <= SHORT_LIST:
        return [before, after]
    old, new = [_key(v) for v in before], [_key(v) for v in after]
    old_set, new_set = set(old), set(new)
    return {
        "added": [k for k in dict.fromkeys(new) if k not in old_set][:MAX_LISTED],
        "removed": [k for k in dict.fromkeys(old) if k not in new_set][:MAX_LISTED],
        "count": [len(before), len(after)],
    }


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``{field: [old, new] | {added, removed, count}}`` for the data fields that differ."""
    changes: dict[str, Any] = {}
    for name in sorted((set(old) | set(new)) - NOT_DATA):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if isinstance(before, list) or isinstance(after, list):
            changes[name] = list_change(before if isinstance(before, list) else [],
                                        after if isinstance(after, list) else [])  # fmt: skip
        else:
            changes[name] = [before, after]
    return changes


def entry(collection: str, old: dict[str, Any], new: dict[str, Any], seen_at: Any, run_id: str) -> dict[str, Any]:
    return {
        "imdb_id": new["_id"],
        "collection": collection,
        "time": seen_at,
        "crawl_run_id": run_id,
        "fields": field_changes(old, new),
    }
