"""Run one notebook top to bottom in a real Jupyter kernel, cell by cell, and write what happened
as JSON. Used by `tests/book/test_colab.py`; it runs *inside* the simulated Colab environment (with
that environment's own nbclient, jupyter_client and ipykernel), so it must work with Colab's old
versions of them and needs nothing from this repository.

Usage: `python colab_run_notebook.py NOTEBOOK RESULT_JSON CELL_TIMEOUT_SECONDS`

Every code cell runs, as Colab's "Run all" runs it. The result holds each code cell's outputs,
for the first cell that failed, its index in the notebook, its source and the error; the seconds
each code cell took; and every distribution installed once the notebook is done (so the caller
sees what the notebook's setup cell installed).
"""
import json, re, sys, time
from importlib import metadata

import nbformat
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run(notebook, timeout):
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=False)
    result = {"ok": True, "cells": [], "outputs": {}}
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code": continue
            start = time.perf_counter()
            try: client.execute_cell(cell, index)
            except Exception as e:   # CellExecutionError, a cell timeout, a dead kernel
                result.update(ok=False, cell=index, source=cell.source, error=type(e).__name__,
                              message=ANSI.sub("", str(e)))
                break
            finally:
                result["cells"].append([index, round(time.perf_counter() - start, 3)])
                result["outputs"][str(index)] = cell.get("outputs", [])
    return result


if __name__ == "__main__":
    notebook, out, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
    result = run(notebook, timeout)
    result["distributions"] = {d.metadata["Name"]: d.version for d in metadata.distributions()}
    with open(out, "w") as f: json.dump(result, f, indent=1)
