"""A ready Spidermon suite over the run's own verdicts: send them where your team looks (``pip install .[spidermon]``).

Every run is judged by the project's monitors (``crawler.runtime.monitors``),
whose verdicts land in the stats as ``monitors/<name>`` (``ok``/``failed``, with
``monitors/<name>/message``). ``RunSuite`` turns each into a Spidermon test, so
Spidermon's actions (Slack, e-mail, Sentry, Discord, Telegram, SNS, file
reports…) can notify on a failed run. Run it when the engine stops, once the
run has been judged:

.. code-block:: python

    # yourproject/monitoring.py
    from spidermon.contrib.actions.slack.notifiers import SendSlackMessageSpiderFinished
    from crawler.monitors import RunSuite

    class NotifyingRunSuite(RunSuite):
        monitors_failed_actions = [SendSlackMessageSpiderFinished]

    # settings (or -s): Spidermon on (the project's add-on adds its extension), the suite, the action's settings
    SPIDERMON_ENABLED = True
    SPIDERMON_ENGINE_STOP_MONITORS = ["yourproject.monitoring.NotifyingRunSuite"]
    SPIDERMON_SLACK_SENDER_TOKEN = "…"; SPIDERMON_SLACK_RECIPIENTS = ["#crawls"]
"""

from __future__ import annotations

from typing import Any

from spidermon import Monitor, MonitorSuite, monitors


@monitors.name("imdb-crawler run")
class RunVerdicts(Monitor):
    """One test per project monitor; a missing verdict (the run was never judged) fails too."""

    def verdict(self, name: str) -> None:
        stats: Any = self.data.stats
        verdict = stats.get(f"monitors/{name}")
        message = stats.get(f"monitors/{name}/message") or "the run was not judged"
        if verdict != "ok":
            self.fail(f"{name}: {message}")

    @monitors.name("the run was not stopped by a failure")
    def test_finish_reason(self) -> None:
        self.verdict("finish_reason")

    @monitors.name("items were stored")
    def test_items_stored(self) -> None:
        self.verdict("items_stored")

    @monitors.name("few pages were blocked")
    def test_blocked_ratio(self) -> None:
        self.verdict("blocked_ratio")

    @monitors.name("every page is accounted for")
    def test_pages_accounted(self) -> None:
        self.verdict("pages_accounted")

    @monitors.name("no parser bug")
    def test_parser_bugs(self) -> None:
        self.verdict("parser_bugs")

    @monitors.name("no field lost coverage")
    def test_field_coverage(self) -> None:
        self.verdict("field_coverage")

    @monitors.name("no layout drift")
    def test_layout_drift(self) -> None:
        self.verdict("layout_drift")


class RunSuite(MonitorSuite):
    """The run's verdicts; subclass it to add ``monitors_failed_actions`` (and ``monitors_finished_actions``)."""

    monitors = [RunVerdicts]  # noqa: RUF012 - Spidermon's own class attribute
