"""Spidermon suites the tests run by import path, as a user's project would (README, "Notifications")."""

from spidermon.contrib.actions.reports.files import CreateFileReport

from crawler.spidermon_suite import RunSuite


class FileReportSuite(RunSuite):
    """The run's verdicts, with Spidermon's own file report when one fails."""

    monitors_failed_actions = [CreateFileReport]  # noqa: RUF012 - Spidermon's own class attribute
