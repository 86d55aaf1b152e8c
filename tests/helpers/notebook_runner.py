"""Run notebooks with nbdev's own test logic, several at once, each in a fresh process.

Each notebook runs through `nbdev.test.test_nb`, exactly what `nbdev-test` runs: cells marked
`#| eval: false` never run, and cells carrying a flag from `tst_flags` (`notest`) are skipped.
Every notebook gets a process of its own, forked from a server process that has already imported
torch and the other heavy packages, so no state leaks from one notebook into the next and nobody
pays torch's import time twice. Up to `workers` notebooks run at once, the longest first (as last
time, if told, else by their amount of code), each with one torch thread (`THREADS`), so they
do not fight over the cores.

    python tests/helpers/notebook_runner.py                  # every notebook in nbs/
    python tests/helpers/notebook_runner.py nbs/01_matmul.ipynb --workers 1
"""
import io, multiprocessing as mp, os, sys, threading, time, traceback
from multiprocessing.connection import wait
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make the helpers package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CACHE_KEY = "foundations/notebook_seconds"  # in pytest's cache (.pytest_cache/): last run's times

# torch threads per notebook, the same on every machine: a reduction split over another number of
# threads can round differently, and the stored outputs are compared with a fresh run's.
THREADS = 1

# Imported once by the server process that forks every notebook's process.
PRELOAD = ["torch", "numpy", "matplotlib.pyplot", "sympy", "hypothesis", "IPython", "fastcore.all",
           "execnb.shell", "nbdev.test", "nbdev.showdoc"]


def cores():
    """The cores this process may use (fewer than the machine's under `taskset` or a container's
    limit)."""
    try: return len(os.sched_getaffinity(0))
    except AttributeError: return os.cpu_count() or 1


def default_workers(n_notebooks):
    "One worker per core, at most one per notebook; `NOTEBOOK_WORKERS` overrides."
    return max(1, int(os.environ.get("NOTEBOOK_WORKERS") or min(cores(), n_notebooks)))


def code_size(path):
    """Characters of code in a notebook: a rough guess of how long it runs, to start the longest
    first."""
    import json
    cells = json.loads(Path(path).read_text())["cells"]
    return sum(len("".join(c["source"])) for c in cells if c["cell_type"] == "code")


def _run_in_child(path, threads, conn, save=False):
    """Process body: run one notebook as nbdev's `test_nb` does, keeping every cell's fresh outputs
    (`stored_outputs.run`); send back `(passed, error text, CPU seconds, differing cells)`, where
    the differing cells are those whose stored text outputs differ from the fresh ones. With
    `save`, write the fresh outputs into the notebook instead (when it ran through)."""
    captured, found = io.StringIO(), []
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/, holding helpers
        from helpers import stored_outputs
        cells, error = stored_outputs.run(path, threads)
        passed = error is None
        if error: captured.write(error)
        if passed and save: stored_outputs.save(path, cells)
        elif passed: found = stored_outputs.differences(stored_outputs.stored_cells(path), cells)
    except BaseException:
        passed = False
        captured.write(traceback.format_exc())
    try:
        import resource
        # this notebook's own CPU time, not the server's
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
    except ImportError: cpu = 0.0  # Windows
    conn.send((bool(passed), captured.getvalue(), cpu, found))
    conn.close()


def _context():
    "Processes forked from a server that has imported `PRELOAD`; spawned ones where there is none."
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")  # Windows: each notebook's process imports torch itself


def run_notebooks(paths, workers=None, on_result=None, last_seconds=None, stop=None, save=False):
    """Run every notebook in `paths`; return {name: (passed, seconds, error text, CPU seconds,
    differing cells)} in `paths` order. `on_result(name, passed, seconds, error, cpu, found)` is
    called as each notebook finishes; `save` writes fresh outputs into each notebook that ran;
    `last_seconds` ({name: seconds} from an earlier run) decides which start first. Once
    the event `stop` is set, running notebooks are ended and the rest never start (no result)."""
    paths = [Path(p).resolve() for p in paths]
    workers = workers or default_workers(len(paths))
    threads = THREADS
    ctx = _context()
    last = last_seconds or {}
    longest_first = sorted(paths, key=lambda p: (last.get(p.name, -1), code_size(p)), reverse=True)
    pending, running, results = longest_first, {}, {}  # the longest first leaves a short tail
    while pending or running:
        if stop is not None and stop.is_set():
            for _, process, _ in running.values(): process.terminate()
            for _, process, _ in running.values(): process.join()
            break
        while pending and len(running) < workers:
            path = pending.pop(0)
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_run_in_child, args=(str(path), threads, send, save),
                                  name=f"notebook {path.name}")
            process.start()
            send.close()
            running[receive] = (path, process, time.perf_counter())
        for conn in wait(list(running), timeout=0.5):
            path, process, start = running.pop(conn)
            try: passed, error, cpu, found = conn.recv()
            except EOFError:
                passed, cpu, found = False, 0.0, []
                error = "the process running it ended without a result"
            process.join()
            if process.exitcode:
                error += f"\n(the notebook's process exited with code {process.exitcode})"
            results[path.name] = (passed, time.perf_counter() - start, error, cpu, found)
            if on_result: on_result(path.name, *results[path.name])
    return {p.name: results[p.name] for p in paths if p.name in results}


class BackgroundRun:
    """`run_notebooks` in a thread, started now; `result(name)` waits for one notebook's result.

    The test suite starts one as soon as it has collected its tests, so the notebooks run on their
    own cores while the other tests run."""
    def __init__(self, paths, workers=None, last_seconds=None):
        self.paths, self.last_seconds = [Path(p).resolve() for p in paths], last_seconds
        self.workers = workers or default_workers(len(self.paths))
        self.results, self.stopping = {}, threading.Event()
        self.done = {p.name: threading.Event() for p in self.paths}
        self.started, self.finished = time.perf_counter(), None
        self.thread = threading.Thread(target=self._run, name="notebooks", daemon=True)
        self.thread.start()

    def _record(self, name, passed, seconds, error, cpu, found):
        self.results[name] = (passed, seconds, error, cpu, found)
        self.done[name].set()

    def _run(self):
        try: run_notebooks(self.paths, self.workers, self._record, self.last_seconds, self.stopping)
        except BaseException:
            error = f"the notebook runner failed:\n{traceback.format_exc()}"
            for name in self.done:
                if name not in self.results: self.results[name] = (False, 0.0, error, 0.0, [])
        finally:
            self.finished = time.perf_counter()
            for event in self.done.values(): event.set()

    def stop(self):
        """End the notebooks still running (pytest stopped early, e.g. `-x`); wait until they have
        ended."""
        self.stopping.set()
        self.thread.join()

    def result(self, name):
        "(passed, seconds, error text, CPU seconds, differing cells) of notebook `name`, once run."
        self.done[name].wait()
        not_run = (False, 0.0, "not run: the notebooks were stopped first", 0.0, [])
        return self.results.get(name, not_run)


def _print_result(name, passed, seconds, error, cpu, found, save=False):
    from helpers import stored_outputs
    state = "passed" if passed else "FAILED"
    if passed and save: state = "outputs stored"
    elif passed and found: state = f"ran, but {len(found)} cell(s) differ from their stored output"
    print(f"{seconds:6.1f} s ({cpu:5.1f} s CPU)  {state}  {name}\n{error}".rstrip(), flush=True)
    if found: print(stored_outputs.describe(name, found, limit=3), flush=True)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*",
                        help="notebooks to run (default: every notebook in nbs/)")
    parser.add_argument("--workers", type=int, default=None,
                        help="notebooks run at once (default: one per core)")
    parser.add_argument("--save", action="store_true",
                        help="store each notebook's fresh outputs in it (then run nbdev-clean)")
    args = parser.parse_args()
    nbs = Path(__file__).resolve().parents[2] / "nbs"
    paths = ([Path(p) if Path(p).exists() else nbs / p for p in args.notebooks]
             or sorted(nbs.glob("*.ipynb")))
    start = time.perf_counter()
    results = run_notebooks(paths, args.workers, save=args.save,
                            on_result=lambda *r: _print_result(*r, save=args.save))
    print(f"{time.perf_counter() - start:6.1f} s  wall time, {len(results)} notebooks")
    if args.save:
        import subprocess
        subprocess.run([str(Path(sys.executable).parent / "nbdev-clean")], cwd=nbs.parent)
    sys.exit(0 if all(r[0] and not r[4] for r in results.values()) else 1)
