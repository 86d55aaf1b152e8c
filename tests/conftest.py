"""Shared fixtures, and a closing table of wall time per part of the suite.

The table (printed just before pytest's summary line) gives the time of each test file, and for
the notebooks the time of each one, so "how long does the whole book take to run" is one line.
"""
from collections import defaultdict
from pathlib import Path
import time
import tomllib

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"

_part_time = defaultdict(float)   # test file -> seconds (setup, call and teardown together)
notebook_times = {}               # notebook name -> seconds, filled by test_notebooks.py
notebook_workers = []             # how many notebooks ran at once
_session_start = time.perf_counter()


def notebooks():
    "Every notebook of the book, front page first, then the chapters in numeric order."
    return sorted((p for p in NBS.glob("*.ipynb")), key=lambda p: (p.name != "index.ipynb", p.name))


@pytest.fixture(scope="session")
def project():
    "The `[project]` table of pyproject.toml."
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pytest_runtest_logreport(report):
    _part_time[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _part_time: return
    write = terminalreporter.write_line
    terminalreporter.section("wall time by part")
    for part, seconds in sorted(_part_time.items(), key=lambda kv: -kv[1]):
        write(f"{seconds:8.1f} s  {part}")
    write(f"{sum(_part_time.values()):8.1f} s  all parts ({time.perf_counter() - _session_start:.1f} s since pytest started)")
    if notebook_times:
        write("")
        for name, seconds in notebook_times.items(): write(f"{seconds:8.1f} s  {name}")
        write(f"{sum(notebook_times.values()):8.1f} s  executing every notebook ({len(notebook_times)}, one fresh "
              f"process each, {notebook_workers[0]} at once: {_part_time.get('tests/test_notebooks.py', 0):.1f} s of wall time)")
