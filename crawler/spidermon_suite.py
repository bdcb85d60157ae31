"""A ready Spidermon suite over the run's own verdicts: send them where your team looks (``pip install .[spidermon]``).

Every run is judged by the project's monitors (``crawler.runtime.judging``),
whose verdicts land in the stats as ``monitors/<name>`` (``ok``/``failed``, with
``monitors/<name>/message``). ``RunSuite`` turns each into a Spidermon test, so
Spidermon's actions (Slack, e-mail, Sentry, Discord, Telegram, SNS, file
reports…) can notify on a failed run. Run it when the engine stops, once the
run has been judged:

.. code-block:: python

    # yourproject/monitoring.py
    from spidermon.contrib.actions.slack.notifiers import SendSlackMessageSpiderFinished
    from crawler.spidermon_suite import RunSuite

    class NotifyingRunSuite(RunSuite):
        monitors_failed_actions = [SendSlackMessageSpiderFinished]

    # settings (or -s): Spidermon on (the project's add-on adds its extension), the suite, the action's settings
    SPIDERMON_ENABLED = True
    SPIDERMON_ENGINE_STOP_MONITORS = ["yourproject.monitoring.NotifyingRunSuite"]
    SPIDERMON_SLACK_SENDER_TOKEN = "…"; SPIDERMON_SLACK_RECIPIENTS = ["#crawls"]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spidermon import Monitor, MonitorSuite, monitors

# Each project monitor (``crawler.runtime.judging.check_run``) and the name its Spidermon test reports under.
VERDICTS = {
    "finish_reason": "the run was not stopped by a failure",
    "items_stored": "items were stored",
    "blocked_ratio": "few pages were blocked",
    "pages_accounted": "every page is accounted for",
    "queue_entries": "the queue held only our requests",
    "parser_bugs": "no parser bug",
    "field_coverage": "no field lost coverage",
    "layout_drift": "no layout drift",
}


@monitors.name("imdb-crawler run")
class RunVerdicts(Monitor):
    """One test per project monitor (``VERDICTS``); a missing verdict (the run was never judged) fails too."""

    def verdict(self, name: str) -> None:
        stats: Any = self.data.stats
        verdict = stats.get(f"monitors/{name}")
        message = stats.get(f"monitors/{name}/message") or "the run was not judged"
        if verdict != "ok":
            self.fail(f"{name}: {message}")


def _verdict_test(name: str, title: str) -> Callable[[RunVerdicts], None]:
    @monitors.name(title)
    def test(self: RunVerdicts) -> None:
        self.verdict(name)

    test.__name__ = f"test_{name}"
    return test


for _name, _title in VERDICTS.items():
    setattr(RunVerdicts, f"test_{_name}", _verdict_test(_name, _title))


class RunSuite(MonitorSuite):
    """The run's verdicts; subclass it to add ``monitors_failed_actions`` (and ``monitors_finished_actions``)."""

    monitors = [RunVerdicts]  # noqa: RUF012 - Spidermon's own class attribute
