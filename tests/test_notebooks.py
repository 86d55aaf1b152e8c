"""Every notebook runs top to bottom through nbdev's own test logic, each in a fresh process.

The selected notebooks start as soon as pytest has collected the tests (`start_early`), several at
once, in the background while the other tests run (`notebook_runner.py`); these tests, which pytest
runs last, wait for their notebook's result. Each notebook goes through `nbdev.test.test_nb`, which
honours the book's flags: cells marked `#| eval: false` never run, and cells with a flag from
`tst_flags` (`notest`) are skipped. Each notebook is its own test, with its own failure message
(the failing cell and its traceback) and its own time in the closing table.
"""
import pytest

import conftest
from conftest import notebooks
from notebook_runner import BackgroundRun


CACHE_KEY = "foundations/notebook_seconds"  # in pytest's cache (.pytest_cache/): last run's times


def start_early(items):
    "Called by conftest.py once the tests are collected: start every selected notebook now."
    cache = getattr(items[0].config, "cache", None)
    conftest.notebook_run = BackgroundRun([item.callspec.params["notebook"] for item in items],
                                          last_seconds=cache.get(CACHE_KEY, {}) if cache else None)


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.name)
def test_notebook_runs(notebook):
    if conftest.notebook_run is None or notebook.name not in conftest.notebook_run.done:
        conftest.notebook_run = BackgroundRun([notebook])  # not started at collection (e.g. called directly)
    passed, seconds, error, _ = conftest.notebook_run.result(notebook.name)
    assert passed, f"{notebook.name} failed under nbdev's test_nb (after {seconds:.1f} s):\n{error}"
