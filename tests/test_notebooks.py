"""Every notebook runs top to bottom through nbdev's own test runner, each in a fresh process.

nbdev-test honours the book's flags: cells marked `#| eval: false` never run, and cells with a
flag from `tst_flags` (`notest`) are skipped unless asked for.
"""
import subprocess, sys
from pathlib import Path

import pytest

from conftest import ROOT, notebooks

NBDEV_TEST = Path(sys.executable).with_name("nbdev-test")


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.name)
def test_notebook_runs(notebook):
    result = subprocess.run([str(NBDEV_TEST), str(notebook.relative_to(ROOT)), "--n-workers", "0"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{notebook.name} failed under nbdev-test:\n{result.stdout}\n{result.stderr}"
