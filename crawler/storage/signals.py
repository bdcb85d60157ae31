"""The project's own signals (sent with ``crawler.signals.send_catch_log``).

``page_finished(page_ids, outcome)``: these pages are done with, for good:
stored (``new``, ``changed``, ``unchanged``), kept in the spool (``spooled``),
or counted under a named reason (``not_found``, ``blocked/waf_challenge``,
``dropped/invalid_title``, ``write_failed/too_large``, ``parser_bug``…). Sent by
whichever component ends a page's life: the writer once a document is written
or spooled, the spider for pages that give no item, the validation pipeline for
dropped items. The frontier listens: it journals them and accounts for every
page it admitted.

``pages_pending(pages)``: ``[(page_id, depth)]`` that an interrupted run of this
job admitted and never finished, sent by the frontier when it opens on a
``JOBDIR`` journal; the spider asks for them again before anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

page_finished = object()
STORED = ("new", "changed", "unchanged")  # the outcomes of a page whose document is in the database
pages_pending = object()


def finish_pages(crawler: Any, page_ids: Iterable[str], outcome: str) -> None:
    """Announce that ``page_ids`` ended with ``outcome`` (from the reactor thread)."""
    ids = [page_id for page_id in page_ids if page_id]
    if ids:
        crawler.signals.send_catch_log(signal=page_finished, page_ids=ids, outcome=outcome)
