"""Stored outputs are a promise: what a notebook shows is what a fresh run of it prints.

`run(path)` executes a notebook the way nbdev's test runner does (execnb's `CaptureShell`, in the
notebook's folder, with `IN_TEST` set and the cells nbdev skips left out) and keeps every cell's
fresh outputs. `differences(stored, fresh)` compares them with the stored ones, cell by cell:
streams (joined per stream), the `text/plain`, `text/markdown`, `text/html` and `text/latex` of
results and displays, and the name and value of errors. Images are left out (a PNG differs in its
bytes from one matplotlib to the next while showing the same picture).

A cell whose output truly depends on the machine (a timing, a thread count) carries the cell tag
`nbval-ignore-output`, the convention of nbval (the ecosystem's pytest plugin for this check):
it is compared whole or not at all, never line by line, so anyone can see which cells are exact.
`nbdev-clean` keeps the tag (`allowed_cell_metadata_keys = "tags"` in pyproject.toml).

`save(path, fresh)` writes the fresh outputs into the notebook (the one step that refreshes the
book: `python tests/helpers/notebook_runner.py --save`).
"""
import json, os, re, sys
from pathlib import Path

IGNORE_TAG = "nbval-ignore-output"
TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def ignored(cell):
    "Is this cell's output marked as machine-dependent (`nbval-ignore-output`)?"
    return IGNORE_TAG in (cell.get("metadata", {}).get("tags") or [])


def _text(value): return value if isinstance(value, str) else "".join(value)


def comparable(outputs):
    """What a reader reads in a cell's outputs, as a list of `(kind, text)`: each stream joined
    whole (stdout, stderr), each result or display's text forms, each error's name and value."""
    streams, items = {}, []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "stream":
            if out["name"] not in streams: items.append(("stream", out["name"]))
            streams[out["name"]] = streams.get(out["name"], "") + _text(out["text"])
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime in TEXT_MIMES:
                if mime in data: items.append((mime, _text(data[mime]).rstrip("\n")))
        elif kind == "error":
            items.append(("error", f"{out.get('ename')}: {ANSI.sub('', str(out.get('evalue')))}"))
    return [(k, streams[t]) if k == "stream" else (k, t) for k, t in items]


def _skip_flags(nbs_folder):
    "The flags whose cells nbdev-test skips, from pyproject.toml (`tst_flags`)."
    from nbdev.config import get_config
    flags = get_config(nbs_folder).tst_flags
    return flags.split() if isinstance(flags, str) else list(flags or [])


def run(path, threads=None):
    """Execute notebook `path` as nbdev's test runner does; return `(cells, error)`: the executed
    cells (each with its fresh `outputs`; `None` for a cell nbdev skips) and the traceback text
    of the first failing cell, or `None`."""
    import torch
    from fastcore.nbio import read_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    from nbdev.test import _skip_cell
    path = Path(path).resolve()
    if threads: torch.set_num_threads(threads)
    cfg = get_config(path.parent)
    sys.path.insert(0, str(cfg.config_path))
    os.environ["IN_TEST"] = "1"
    nb = read_nb(path)
    skip = _skip_cell(nb, _skip_flags(path.parent), None)
    shell = CaptureShell(path)
    ran = set()
    error = None
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell.run_all(nb, exc_stop=True, preproc=skip, postproc=lambda c: ran.add(id(c)),
                      cell_timeout=cfg.cell_timeout or None)
    except BaseException:
        import traceback
        error = shell.prettytb(fname=path) or traceback.format_exc()
    finally: os.chdir(cwd)
    return [c if id(c) in ran else None for c in nb.cells], error


def differences(stored_cells, fresh_cells):
    """`[(index, stored, fresh)]` for every code cell whose comparable outputs differ, leaving out
    the cells tagged `nbval-ignore-output` and those that did not run."""
    found = []
    for i, (stored, fresh) in enumerate(zip(stored_cells, fresh_cells)):
        if stored["cell_type"] != "code" or fresh is None or ignored(stored): continue
        a, b = comparable(stored.get("outputs")), comparable(fresh.get("outputs"))
        if a != b: found.append((i, a, b))
    return found


def describe(path, found, limit=8):
    "A failure message: for each differing cell, its index and a diff of stored and fresh text."
    import difflib
    lines = [f"{Path(path).name}: {len(found)} cell(s) print something else than they store "
             "(re-run and store with "
             f"`python tests/helpers/notebook_runner.py --save {Path(path).name}`; "
             f"a cell whose output depends on the machine gets the tag {IGNORE_TAG!r}):"]
    for i, a, b in found[:limit]:
        show = lambda items: "\n".join(f"[{k}] {t}" for k, t in items).splitlines()
        diff = difflib.unified_diff(show(a), show(b), "stored", "fresh", lineterm="", n=1)
        lines += [f"--- cell {i}"] + [line[:200] for line in list(diff)[:30]]
    if len(found) > limit: lines.append(f"... and {len(found) - limit} more")
    return "\n".join(lines)


def stored_cells(path): return json.loads(Path(path).read_text())["cells"]


def marked_counts(path):
    "(cells with output, cells tagged nbval-ignore-output) in notebook `path`."
    cells = [c for c in stored_cells(path) if c["cell_type"] == "code"]
    return sum(bool(c.get("outputs")) for c in cells), sum(ignored(c) for c in cells)


def _plain(value):
    "An execnb output (AttrDicts, lists of lines) as plain JSON data, the way Jupyter stores it."
    if isinstance(value, dict): return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list): return [_plain(v) for v in value]
    return value


def save(path, fresh_cells):
    """Write the fresh outputs of the cells that ran into notebook `path` (everything else as it
    is); `nbdev-clean` should run after it."""
    nb = json.loads(Path(path).read_text())
    for cell, fresh in zip(nb["cells"], fresh_cells):
        if cell["cell_type"] != "code" or fresh is None: continue
        outputs = _plain(list(fresh.get("outputs") or []))
        for out in outputs:
            if "text" in out and isinstance(out["text"], str):
                out["text"] = out["text"].splitlines(True)
            for mime, value in out.get("data", {}).items():
                if isinstance(value, str) and not mime.startswith("image/png"):
                    out["data"][mime] = value.splitlines(True)
        cell["outputs"] = outputs
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
