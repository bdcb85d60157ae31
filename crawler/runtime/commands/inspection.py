"""Settings for the commands that look at pages without running the job.

parse, shell, check, fetch, view, bench and runspider: only ``scrapy crawl``
runs the job.

They must not start MongoDB, take the run lock or write ``crawl_runs``: the
run-level components are switched off at ``cmdline`` priority (above the
project's own settings).
"""

from __future__ import annotations

import argparse
from typing import Any

INSPECTION_SETTINGS: dict[str, Any] = {
    "RUN_LOCK_ENABLED": False,
    "RUN_RECORD_ENABLED": False,
    "PROGRESS_INTERVAL": 0,
    "ITEM_PIPELINES": {},
}


def inspect_only(settings: Any, keep_pipelines: bool = False) -> None:
    for name, value in INSPECTION_SETTINGS.items():
        if name == "ITEM_PIPELINES" and keep_pipelines:
            continue
        if (settings.getpriority(name) or 0) < 40:  # a -s option still wins
            settings.set(name, value, priority="cmdline")


def inspecting(command: type) -> type:
    """``command`` (Scrapy's parse, shell or check) with the job's components off."""

    class Command(command):  # type: ignore[valid-type,misc]
        def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
            super().process_options(args, opts)
            inspect_only(self.settings, keep_pipelines=bool(getattr(opts, "pipelines", False)))

    Command.__doc__ = f"{command.__doc__ or ''} (without the job's side effects: no MongoDB, lock or run record)"
    return Command
