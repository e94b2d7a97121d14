"""Tests of the management commands and the worker (``runserver``, ``runworker``)."""
