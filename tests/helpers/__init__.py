"""What the test suites share, as a package: `from helpers import ROOT` in any test.

- `adversarial`: the harness of the library's adversarial suites (tests/library/).
- `notebook_runner`: runs notebooks in fresh processes, several at once (also a command:
  `python tests/helpers/notebook_runner.py [--save] [NOTEBOOK ...]`).
- `stored_outputs`: runs a notebook and compares what it prints with what it stores.
- `colab_sim`, `colab_run_notebook.py`, `colab_packages.txt`: the simulated stock Colab runtime.
- `site_checks`: the checks of the rendered site in headless Chromium.

This module holds the repository's paths and the work that tests start in the background, which
the closing table of `tests/conftest.py` reports.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NBS = ROOT / "nbs"
notebook_run = None    # the notebooks running in the background (notebook_runner.BackgroundRun)
background_time = {}   # work started early, in the background -> seconds it took


def notebooks():
    "Every notebook of the book, front page first, then the chapters in numeric order."
    return sorted((p for p in NBS.glob("*.ipynb")), key=lambda p: (p.name != "index.ipynb", p.name))
