"""Every notebook runs top to bottom through nbdev's own test logic, each in a fresh process, and
prints what it stores.

The selected notebooks start as soon as pytest has collected the tests (`start_early`), several at
once, in the background while the other tests run (`helpers/notebook_runner.py`); these tests,
which pytest runs last, wait for their notebook's result. Each notebook runs as
`nbdev.test.test_nb` runs it: cells marked `#| eval: false` never run, and cells with a flag from
`tst_flags` (`notest`) are skipped. Each notebook gives two tests: it runs (the failing cell and
its traceback otherwise), and every cell's stored text output is what the fresh run printed
(`helpers/stored_outputs.py`), except the cells tagged `nbval-ignore-output`, which may be at most
`MARKED_AT_MOST` of the cells with output.
`python tests/helpers/notebook_runner.py --save` stores fresh outputs in every notebook.
"""
import json

import pytest

import helpers
from helpers import notebooks
from helpers.notebook_runner import CACHE_KEY, BackgroundRun
from helpers import stored_outputs


MARKED_AT_MOST = 0.15                       # of the book's cells with output, machine-dependent


def start_early(items):
    "Called by helpers.py once the tests are collected: start every selected notebook now."
    cache = getattr(items[0].config, "cache", None)
    wanted = {item.callspec.params["notebook"] for item in items if hasattr(item, "callspec")}
    helpers.notebook_run = BackgroundRun(sorted(wanted),
                                          last_seconds=cache.get(CACHE_KEY, {}) if cache else None)


def _result(notebook):
    if helpers.notebook_run is None or notebook.name not in helpers.notebook_run.done:
        # not started at collection (e.g. called directly)
        helpers.notebook_run = BackgroundRun([notebook])
    return helpers.notebook_run.result(notebook.name)


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.name)
def test_notebook_runs(notebook):
    passed, seconds, error, _, _ = _result(notebook)
    assert passed, f"{notebook.name} failed under nbdev's test_nb (after {seconds:.1f} s):\n{error}"


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.name)
def test_stored_outputs_are_what_a_rerun_prints(notebook):
    passed, _, _, _, found = _result(notebook)
    if not passed: pytest.skip("the notebook did not run through (see test_notebook_runs)")
    assert not found, stored_outputs.describe(notebook, found)


def test_few_cells_are_marked_machine_dependent():
    counts = {p.name: stored_outputs.marked_counts(p) for p in notebooks()}
    with_output, marked = (sum(c[i] for c in counts.values()) for i in (0, 1))
    table = "\n".join(f"  {n}: {m} of {w}" for n, (w, m) in counts.items() if m)
    assert marked <= MARKED_AT_MOST * with_output, (
        f"{marked} of {with_output} cells with output are tagged nbval-ignore-output, more than "
        f"{MARKED_AT_MOST:.0%}:\n{table}")


def test_ignore_tag_survives_nbdev_clean(tmp_path):
    "nbdev-clean keeps the cell tag (pyproject.toml: allowed_cell_metadata_keys)."
    from nbdev.clean import _nbdev_clean
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "id": "a", "source": "1",
                     "metadata": {"tags": [stored_outputs.IGNORE_TAG], "scrolled": True},
                     "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    _nbdev_clean(nb, path=helpers.ROOT)
    assert nb["cells"][0]["metadata"] == {"tags": [stored_outputs.IGNORE_TAG]}, json.dumps(nb)


def test_comparison_sees_what_a_reader_sees():
    "Streams are compared whole, text forms each, images not at all; an ignored cell never."
    stream = lambda *parts: [{"output_type": "stream", "name": "stdout", "text": p} for p in parts]
    assert (stored_outputs.comparable(stream("a\n", "b\n"))
            == stored_outputs.comparable(stream("a\nb\n")))
    image = lambda png: [{"output_type": "display_data",
                          "data": {"image/png": png, "text/plain": "<Figure>"}}]
    assert stored_outputs.comparable(image("AAA")) == stored_outputs.comparable(image("BBB"))
    cell = lambda outputs, tags=(): {"cell_type": "code", "metadata": {"tags": list(tags)},
                                     "outputs": outputs}
    assert stored_outputs.differences([cell(stream("1.1e-05\n"))], [cell(stream("1.5e-05\n"))])
    assert not stored_outputs.differences([cell(stream("1 ms\n"), [stored_outputs.IGNORE_TAG])],
                                          [cell(stream("2 ms\n"))])
