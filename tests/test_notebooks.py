"""Every notebook runs top to bottom through nbdev's own test logic, each in a fresh process.

`notebook_runner` runs the selected notebooks several at once (one per core) through
`nbdev.test.test_nb`, which honours the book's flags: cells marked `#| eval: false` never run, and
cells with a flag from `tst_flags` (`notest`) are skipped. Each notebook is still its own test with
its own failure message (the failing cell and its traceback) and its own time in the closing table.
"""
import pytest

import conftest
from conftest import notebooks
from notebook_runner import default_workers, run_notebooks


@pytest.fixture(scope="session")
def notebook_results(request):
    "Run, all at once, every notebook whose test is selected in this session."
    selected = [item.callspec.params["notebook"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_notebook_runs"]
    workers = default_workers(len(selected))
    results = run_notebooks(selected, workers)
    conftest.notebook_times.update({name: seconds for name, (_, seconds, _) in results.items()})
    conftest.notebook_workers.append(workers)
    return results


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.name)
def test_notebook_runs(notebook, notebook_results):
    passed, seconds, error = notebook_results[notebook.name]
    assert passed, f"{notebook.name} failed under nbdev's test_nb (after {seconds:.1f} s):\n{error}"
