"""For ``scrapyd-deploy``, which builds its egg with ``setup.py bdist_egg``: everything is in pyproject.toml."""

from setuptools import setup

setup()
