"""Judging a run, without any I/O: its stats in, its summary and verdicts out.

``summarize`` makes the run's counts from Scrapy's stats (what ``crawl_runs``
stores); each monitor takes that summary and returns ``{"monitor", "ok",
"message"}``: did this crawl do what a scheduled job should, and lose nothing?
``check_run`` asks them all; ``aggregate`` adds up the workers of a
distributed run. Recording (``crawler.runtime.extensions.runrecord``) is
apart. The run record publishes every verdict in the stats
(``monitors/<name>``), stores them in ``crawl_runs``, logs failures and, with
``MONITORS_FAIL_EXIT``, makes ``scrapy crawl`` exit with status 1.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from crawler.parsing.drift import problems

# Finish reasons that mean the run did not do its work.
FAILED_REASONS = {
    "blocked": "most pages were blocked",
    "locked": "another run of the job holds its lock",
    "start_error": "the crawl could not start (see the error above)",
    "mongodb_unreachable": "MongoDB was unreachable at start",
    "redis_unavailable": "Redis was unreachable (at start, or for longer than REDIS_OUTAGE_TIMEOUT)",
    "frontier_lost": "Redis lost the shared frontier",
    "jobdir_unwritable": "the frontier journal in JOBDIR could not be written (a full disk?)",
}


@dataclass(frozen=True)
class MonitorSettings:
    max_blocked_ratio: float
    max_coverage_drop: float
    min_items_for_coverage: int
    jobdir: bool  # unfinished pages are kept for the next start (JOBDIR, or a distributed run's Redis)
    drift_max_fallback: float
    drift_min_pages: int

    @classmethod
    def from_config(cls, config: Any) -> MonitorSettings:
        return cls(
            config.max_blocked_ratio, config.max_coverage_drop, config.min_items_for_coverage,
            bool(config.jobdir or config.redis_url),
            config.drift_max_fallback, config.drift_min_pages,
        )  # fmt: skip


def result(name: str, ok: bool, message: str) -> dict[str, Any]:
    return {"monitor": name, "ok": ok, "message": message}


def finish_reason(run: dict[str, Any]) -> dict[str, Any]:
    reason = run.get("finish_reason") or "finished"
    if reason in FAILED_REASONS:
        return result("finish_reason", False, f"{reason}: {FAILED_REASONS[reason]}")
    return result("finish_reason", True, reason)


def items_stored(run: dict[str, Any]) -> dict[str, Any]:
    stored = run.get("stored_items", 0)
    attempted = run.get("finished_pages", 0)
    if attempted and not stored:
        return result("items_stored", False, f"{attempted} pages fetched but no item stored")
    return result("items_stored", True, f"{stored} items from {attempted} pages")


def blocked_share(blocked: int, finished: int) -> float:
    """The share of a run's finished pages that the site blocked: the one definition, for this monitor and for
    the middleware that stops a run most of whose pages are blocked (``BLOCKED_CLOSE_RATIO``)."""
    return blocked / finished if finished else 0.0


def blocked_ratio(run: dict[str, Any], limit: float) -> dict[str, Any]:
    attempted = run.get("finished_pages", 0)
    blocked = run.get("blocked", 0)
    ratio = blocked_share(blocked, attempted)
    message = f"{blocked} of {attempted} pages blocked ({ratio:.0%}, limit {limit:.0%})"
    return result("blocked_ratio", ratio <= limit, message)


def pages_accounted(run: dict[str, Any], jobdir: bool) -> dict[str, Any]:
    """Every page the run admitted ended stored, spooled or counted under a reason; nothing lost."""
    lost = sum((run.get("items") or {}).get("lost", {}).values())
    unreadable = run.get("spool_unreadable", 0)
    unfinished = run.get("unfinished", 0)
    problems = []
    if lost:
        problems.append(f"{lost} documents lost (neither written to MongoDB nor kept in the spool)")
    if unreadable:
        problems.append(f"{unreadable} spooled lines unreadable (quarantined)")
    if unfinished and run.get("finish_reason") == "finished":
        problems.append(f"{unfinished} admitted pages never finished")
    elif unfinished and not jobdir:
        problems.append(f"{unfinished} admitted pages not fetched ({run.get('finish_reason')}, no JOBDIR to resume)")
    if problems:
        return result("pages_accounted", False, "; ".join(problems))
    kept = f", {unfinished} kept for the next start of the job" if unfinished else ""
    return result("pages_accounted", True, f"{run.get('admitted', 0)} pages admitted, all accounted for{kept}")


def queue_entries(run: dict[str, Any]) -> dict[str, Any]:
    """The shared queue held only this project's requests (anything else was refused: someone writes into it)."""
    refused = run.get("refused_entries", 0)
    if refused:
        return result("queue_entries", False, f"{refused} entries of the shared queue were not this project's "
                      "requests: refused (something else writes into the queue)")  # fmt: skip
    return result("queue_entries", True, "every queued entry was one of this project's requests")


def parser_bugs(run: dict[str, Any]) -> dict[str, Any]:
    bugs = run.get("parser_bugs", 0)
    if bugs:
        return result("parser_bugs", False, f"{bugs} pages hit a parser bug (tracebacks in the log)")
    return result("parser_bugs", True, "no parser bug")


def coverage_drop(run: dict[str, Any], previous: dict[str, Any] | None, settings: MonitorSettings) -> dict[str, Any]:
    """Fields found on clearly fewer items than in the previous run: a layout change, usually."""
    if not previous:
        return result("field_coverage", True, "no previous run to compare with")
    drops = []
    for collection, fields in (run.get("coverage") or {}).items():
        before = (previous.get("coverage") or {}).get(collection) or {}
        counts = (run.get("item_counts") or {}).get(collection, 0)
        previous_counts = (previous.get("item_counts") or {}).get(collection, 0)
        if min(counts, previous_counts) < settings.min_items_for_coverage:
            continue
        for field, share in before.items():
            now = fields.get(field, 0.0)
            if share - now > settings.max_coverage_drop:
                drops.append(f"{collection}.{field} {share:.0%} → {now:.0%}")
    if drops:
        return result("field_coverage", False, "coverage dropped: " + ", ".join(sorted(drops)))
    return result("field_coverage", True, "no field lost coverage")


def layout_drift(run: dict[str, Any], previous: dict[str, Any] | None, settings: MonitorSettings) -> dict[str, Any]:
    """Fields whose first source in the page data vanished, or that fell back on too many pages."""
    drifted = problems(run.get("drift") or {}, (previous or {}).get("drift"), settings.drift_max_fallback,
                       settings.drift_min_pages)  # fmt: skip
    if drifted:
        return result("layout_drift", False, "; ".join(drifted))
    pages = sum(group.get("pages", 0) for group in (run.get("drift") or {}).values())
    return result("layout_drift", True, f"every field read from its first source on {pages} pages")


def check_run(run: dict[str, Any], previous: dict[str, Any] | None, settings: MonitorSettings) -> list[dict[str, Any]]:
    return [
        finish_reason(run),
        items_stored(run),
        blocked_ratio(run, settings.max_blocked_ratio),
        pages_accounted(run, settings.jobdir),
        queue_entries(run),
        parser_bugs(run),
        coverage_drop(run, previous, settings),
        layout_drift(run, previous, settings),
    ]


# Run-record fields that add up across the workers of a distributed run.
_SUMMED = (
    "responses", "not_found", "blocked", "failed_pages", "admitted", "finished_pages",
    "parser_bugs", "spool_unreadable", "stored_items", "refused_entries",
)  # fmt: skip


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run record for the workers of a distributed run: counts summed, coverage weighted by items."""
    total: dict[str, Any] = {key: sum(number(run.get(key)) for run in runs) for key in _SUMMED}
    total["workers"] = len(runs)
    total["unfinished"] = max(0, total["admitted"] - total["finished_pages"])
    total["items"] = _sum_nested([run.get("items") or {} for run in runs])
    total["outcomes"] = _sum_nested([run.get("outcomes") or {} for run in runs])
    item_counts: dict[str, int] = _sum_nested([run.get("item_counts") or {} for run in runs])
    total["item_counts"] = item_counts
    coverage: dict[str, dict[str, float]] = {}
    for collection, count in item_counts.items():
        if not count:
            continue
        carried: dict[str, float] = {}
        for run in runs:
            items = (run.get("item_counts") or {}).get(collection, 0)
            for name, share in ((run.get("coverage") or {}).get(collection) or {}).items():
                carried[name] = carried.get(name, 0.0) + number(share) * number(items)
        coverage[collection] = {name: round(n / count, 3) for name, n in carried.items()}
    total["coverage"] = coverage
    total["drift"] = _sum_nested([run.get("drift") or {} for run in runs])
    total["routes"] = _sum_nested([run.get("routes") or {} for run in runs])
    return total


def number(value: Any) -> float:
    """A count or share a record holds, or 0 for anything else: records can be written by others (text, lists,
    booleans, infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return value


def _sum_nested(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if isinstance(value, dict):
                total[key] = _sum_nested([total.get(key) or {}, value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total


def outcomes_of(stats: dict[str, Any]) -> dict[str, int]:
    """``{outcome: pages}`` from the ``pages/<outcome>`` stats the frontier keeps."""
    return {key[6:]: value for key, value in stats.items() if key.startswith("pages/")}


def drift_of(stats: dict[str, Any]) -> dict[str, Any]:
    """``{"layout/kind": {"pages": n, "fields": {field: {primary, fallback, missing}}}}`` from ``drift/…`` stats."""
    drift: dict[str, Any] = {}
    for key, value in stats.items():
        parts = key.split("/")
        if parts[0] != "drift" or len(parts) not in (4, 5):
            continue
        group = drift.setdefault(f"{parts[1]}/{parts[2]}", {"pages": 0, "fields": {}})
        if len(parts) == 4:
            group["pages"] = value
        else:
            counts = group["fields"].setdefault(parts[3], {"primary": 0, "fallback": 0, "missing": 0})
            counts[parts[4]] = value
    return drift


def summarize(stats: dict[str, Any], coverage: dict[str, Counter[str]], items: Counter[str]) -> dict[str, Any]:
    """The run's counts, as stored in ``crawl_runs`` and judged by the monitors."""
    outcomes = outcomes_of(stats)

    def under(prefix: str) -> dict[str, int]:
        return {k.split("/", 1)[1]: v for k, v in outcomes.items() if k.startswith(prefix + "/")}

    stored = {name: outcomes.get(name, 0) for name in ("new", "changed", "unchanged")}
    # Found by the bulk writer (the page finished as a duplicate), or held back in the writer's batch.
    duplicates = outcomes.get("duplicate", 0) + stats.get("mongodb/duplicate_in_batch", 0)
    failed = sum(sum(under(kind).values()) for kind in ("failed", "bad_page"))
    return {
        "responses": stats.get("response_received_count", 0),
        "admitted": stats.get("frontier/admitted", 0),
        "finished_pages": stats.get("frontier/finished", 0),
        "unfinished": stats.get("frontier/unfinished", 0),
        "not_found": outcomes.get("not_found", 0),
        "blocked": sum(under("blocked").values()),
        "failed_pages": failed + outcomes.get("parser_bug", 0) + outcomes.get("ignored", 0),
        "parser_bugs": stats.get("imdb/parser_bug", 0),
        "spool_unreadable": stats.get("mongodb/spool_unreadable", 0),
        "refused_entries": stats.get("redis/refused_entries", 0),
        "schema": 2,  # 1: before `pages` and `page_attempts` were dropped for `admitted` and `finished_pages`
        "stored_items": sum(stored.values()) + duplicates,
        "outcomes": outcomes,
        "items": {
            **stored,
            "duplicates": duplicates,
            "spooled": outcomes.get("spooled", 0),
            "replayed": stats.get("mongodb/replayed", 0),
            "write_failed": under("write_failed"),
            "dropped": under("dropped"),
            "lost": under("lost"),
        },
        "item_counts": dict(items),
        "drift": drift_of(stats),
        "routes": {key[6:]: value for key, value in stats.items() if key.startswith("route/") and key.count("/") == 1},
        "coverage": {
            name: {field: round(n / items[name], 3) for field, n in counter.items()}
            for name, counter in coverage.items()
            if items[name]
        },
    }
