"""The suite's hooks and shared fixtures, and a closing table of wall time per part of the suite.

The tests live in tests/library/ (the library's own suites) and tests/book/ (the book's
machinery); the code they share is the package tests/helpers/ (`from helpers import ROOT`).

The table (printed just before pytest's summary line) gives the time of each test file, and for
the notebooks the time of each one, so "how long does the whole book take to run" is one line.
"""
from collections import defaultdict
import sys, time
try: import tomllib                     # Python 3.11+
except ModuleNotFoundError: import tomli as tomllib   # Python 3.10: the same parser, from PyPI

import pytest

import helpers
from helpers import ROOT

_part_time = defaultdict(float)   # test file -> seconds (setup, call and teardown together)
_session_start = time.perf_counter()


@pytest.fixture(scope="session")
def project():
    "The `[project]` table of pyproject.toml."
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pytest_collection_modifyitems(items):
    """The notebook tests go last: their notebooks run in the background (see `start_early` in
    test_notebooks.py) while the other tests run."""
    last = ("test_notebook_runs", "test_stored_outputs_are_what_a_rerun_prints")
    items.sort(key=lambda item: getattr(item, "originalname", None) in last)  # stable


def pytest_collection_finish(session):
    """A test module may define `start_early(items)`: called here, once pytest knows which of its
    tests will run, to start slow work (the notebooks, the site build) in the background."""
    if session.config.option.collectonly: return
    selected = defaultdict(list)
    for item in session.items: selected[getattr(item, "module", None)].append(item)
    for module, items in selected.items():
        if hasattr(module, "start_early"): module.start_early(items)


def pytest_sessionfinish(session):
    """End notebooks still running (pytest stopped early); remember each notebook's time in
    pytest's cache, so that next time the longest start first."""
    if helpers.notebook_run: helpers.notebook_run.stop()
    cache = getattr(session.config, "cache", None)
    if helpers.notebook_run and helpers.notebook_run.results and cache is not None:
        from helpers.notebook_runner import CACHE_KEY
        times = cache.get(CACHE_KEY, {})
        times.update({name: round(r[1], 1) for name, r in helpers.notebook_run.results.items()})
        cache.set(CACHE_KEY, times)


def pytest_runtest_logreport(report):
    _part_time[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _part_time: return
    write = terminalreporter.write_line
    terminalreporter.section("wall time by part")
    for part, seconds in sorted(_part_time.items(), key=lambda kv: -kv[1]):
        waiting = part.endswith("test_notebooks.py") and helpers.notebook_run
        write(f"{seconds:8.1f} s  {part}"
              + ("  (waiting for the notebooks after the other parts)" if waiting else ""))
    since = time.perf_counter() - _session_start
    write(f"{sum(_part_time.values()):8.1f} s  all parts ({since:.1f} s since pytest started)")
    for what, seconds in helpers.background_time.items():
        write(f"{seconds:8.1f} s  {what} (in the background, from collection on)")
    if helpers.notebook_run and helpers.notebook_run.results:
        run, results = helpers.notebook_run, helpers.notebook_run.results
        write("")
        for path in run.paths:
            if path.name in results:
                write(f"{results[path.name][1]:8.1f} s  {path.name}  "
                      f"({results[path.name][3]:.1f} s CPU)")
        span = (run.finished or time.perf_counter()) - run.started
        write(f"{sum(r[1] for r in results.values()):8.1f} s  executing every notebook "
              f"({len(results)}, one fresh process each, {run.workers} at once alongside the other "
              f"parts: {span:.1f} s from first start to last result; "
              f"{sum(r[3] for r in results.values()):.1f} s CPU)")
    # the harness of tests/library/test_adversarial_*.py, if they ran
    adversarial = sys.modules.get("helpers.adversarial")
    if adversarial is not None and adversarial.OUTCOMES:
        write("")
        for outcome, count in adversarial.OUTCOMES.most_common():
            write(f"{count:8d}    {outcome}")
        write(f"{sum(adversarial.OUTCOMES.values()):8d}    adversarial calls judged "
              "(tests/helpers/adversarial.py)")
