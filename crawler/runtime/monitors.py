"""End-of-run checks: did this crawl produce what a scheduled job should?

Each monitor returns ``{"monitor", "ok", "message"}``. The writer pipeline runs
them when the spider closes, logs failures as errors, stores every result in
the run's ``crawl_runs`` document and, with ``MONITORS_FAIL_EXIT`` on, makes
``scrapy crawl`` exit with status 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MonitorSettings:
    max_blocked_ratio: float = 0.2
    max_coverage_drop: float = 0.25
    min_items_for_coverage: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> MonitorSettings:
        return cls(
            max_blocked_ratio=settings.getfloat("MONITOR_MAX_BLOCKED_RATIO", cls.max_blocked_ratio),
            max_coverage_drop=settings.getfloat("MONITOR_MAX_COVERAGE_DROP", cls.max_coverage_drop),
            min_items_for_coverage=settings.getint("MONITOR_MIN_ITEMS_FOR_COVERAGE", cls.min_items_for_coverage),
        )


def result(name: str, ok: bool, message: str) -> dict[str, Any]:
    return {"monitor": name, "ok": ok, "message": message}


def items_stored(run: dict[str, Any]) -> dict[str, Any]:
    items = run.get("items", {})
    stored = sum(items.get(k, 0) for k in ("new", "changed", "unchanged", "duplicates"))
    attempted = run.get("page_attempts", 0)
    if attempted and not stored:
        return result("items_stored", False, f"{attempted} pages fetched but no item stored")
    return result("items_stored", True, f"{stored} items from {attempted} pages")


def blocked_ratio(run: dict[str, Any], limit: float) -> dict[str, Any]:
    attempted = run.get("page_attempts", 0)
    blocked = run.get("blocked", 0)
    ratio = blocked / attempted if attempted else 0.0
    message = f"{blocked} of {attempted} pages blocked ({ratio:.0%}, limit {limit:.0%})"
    return result("blocked_ratio", ratio <= limit, message)


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


def check_run(run: dict[str, Any], previous: dict[str, Any] | None, settings: MonitorSettings) -> list[dict[str, Any]]:
    return [items_stored(run), blocked_ratio(run, settings.max_blocked_ratio), coverage_drop(run, previous, settings)]


# Run-record fields that add up across the workers of a distributed run.
_SUMMED = ("pages", "not_found", "blocked", "failed_pages", "page_attempts")


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run record for the workers of a distributed run: counts summed, coverage weighted by items."""
    total: dict[str, Any] = {key: sum(run.get(key, 0) for run in runs) for key in _SUMMED}
    total["workers"] = len(runs)
    total["items"] = _sum_nested([run.get("items") or {} for run in runs])
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
                carried[name] = carried.get(name, 0.0) + share * items
        coverage[collection] = {name: round(n / count, 3) for name, n in carried.items()}
    total["coverage"] = coverage
    return total


def _sum_nested(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                total[key] = _sum_nested([total.get(key) or {}, value])
            elif isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total
