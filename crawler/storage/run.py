"""Who this run is: its id, job, start time and (distributed) run group, one object per crawl.

The writer stamps documents with ``run.id``; the run record, the run lock and
the monitors describe the same run. ``current_run(crawler)`` makes it on first
use and hands every later caller the same object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from crawler.storage.settings import job_name


@dataclass
class Run:
    """The identity of one crawl process's run."""

    job: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    group: str | None = None  # the distributed run this worker belongs to (crawler.runtime.distributed)


_RUNS: WeakKeyDictionary[Any, Run] = WeakKeyDictionary()


def current_run(crawler: Any) -> Run:
    run = _RUNS.get(crawler)
    if run is None:
        run = _RUNS[crawler] = Run(job=job_name(crawler))
    return run
