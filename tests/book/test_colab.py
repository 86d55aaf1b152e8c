"""Every notebook runs on a stock Colab runtime: a simulation of one, per notebook.

`test_notebook_on_colab` (marker `colab`; `pytest -m "not colab"` leaves it out) builds the
project's wheel, takes a cached virtual environment with Colab's versions of what the book touches
(`tests/helpers/colab_packages.txt`: IPython 7.34, ipykernel 6.17, numpy 2.1, fastcore 2.2.12, no
nbdev, no hypothesis; Python 3.11 and torch 2.13.0 stand in for Colab's, see that file), and for
each notebook a fresh copy of it where `google.colab` is already imported, as on Colab. The
notebook, in an empty working folder, then runs top to bottom with a real kernel, its setup cell
included: that cell's `pip install "nn-foundations[book]"` takes our wheel by name from
`PIP_FIND_LINKS` and the rest from the package index. Every code cell runs, as Colab's "Run all"
runs it: `#| eval: false` and `notest` are plain comments there. Each chapter's cells must then
print what the notebook stores (`stored_outputs.py`, the same comparison as the notebook tests; the
setup cell, which acts only on Colab, is left out). The exercise notebooks run twice: with the
chapters' code in place of their stubs (see `solved_exercises`), and as shipped, a learner's first
"Run all" (`test_exercise_notebook_as_shipped_on_colab`). The notebooks run two at a time
(`COLAB_WORKERS`); a closing section of pytest's report gives the time of each one and what the
setup cell installed. See `tests/helpers/colab_sim.py` for the machinery.

The other tests here are quick: the setup cell is the same in every notebook and installs by name,
the simulation runs every cell, and the release's version check works both ways.
"""
import difflib, json, os, re, resource, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import colab_sim
from helpers import stored_outputs
from helpers import ROOT, NBS

SETUP_CELL = 2          # index of the hidden Colab setup cell in every notebook
WORKERS = int(os.environ.get("COLAB_WORKERS", "2"))


def book_notebooks():
    """Every notebook a reader can open in Colab: `nbs/` (sub-folders too, e.g. exercises) and an
    `exercises/` folder at the root if there is one; `_`- and `.`-folders (`_proc/`) are not."""
    found = list(NBS.rglob("*.ipynb"))
    if (ROOT / "exercises").is_dir(): found += (ROOT / "exercises").rglob("*.ipynb")
    found = [p for p in found
             if not any(part.startswith(("_", ".")) for part in p.relative_to(ROOT).parts[:-1])]
    return sorted(found, key=lambda p: (p.name != "index.ipynb", p.relative_to(ROOT).as_posix()))


def solved_exercises(paths):
    """The exercise notebooks among `paths` (those in `nbs/exercises/`), each with the chapter's own
    code in place of every `raise NotImplementedError` stub, as `tools/make_exercises.py` writes it:
    `{path: notebook dict}`. On Colab a reader runs the stubs and fills them in; the simulation runs
    the filled-in version with its `check` cells too (flagged `notest`, as they fail on purpose
    while a stub is there), so that every cell a reader runs is proved to run there."""
    paths = [p for p in paths if p.parent == NBS / "exercises"]
    if not paths: return {}
    sys.path.insert(0, str(ROOT / "tools"))
    try: import make_exercises
    finally: sys.path.remove(str(ROOT / "tools"))
    solved = make_exercises.exercise_notebooks(solutions=True)
    missing = [name(p) for p in paths if p.name not in solved]
    assert not missing, f"tools/make_exercises.py writes no such exercise notebooks: {missing}"
    return {p: solved[p.name] for p in paths}


def name(path): return path.relative_to(NBS if NBS in path.parents else ROOT).as_posix()


def cells(path): return json.loads(path.read_text())["cells"]


def source(cell): return "".join(cell["source"])


# --- quick checks (not the simulation) ---------------------------------------------------------

def test_setup_cell_is_the_same_everywhere_and_installs_by_name(project):
    extras = project.get("optional-dependencies", {})
    reference = source(cells(NBS / "index.ipynb")[SETUP_CELL])
    installs = re.findall(r'"(nn-foundations\[(\w+)\])"', reference)
    assert installs, f"the setup cell installs no `nn-foundations[...]`:\n{reference}"
    for spec, extra in installs:
        assert extra in extras, (
            f"the setup cell installs {spec}, but pyproject.toml has no extra {extra!r}")
    assert project["name"] == "nn-foundations"
    assert reference.startswith("#| hide"), "the setup cell must stay hidden on the site"
    assert '"google.colab" in sys.modules' in reference, "the setup cell must act on Colab only"
    assert not re.search(r"git\+|https?://|github", reference), (
        f"install by name, not from a URL:\n{reference}")
    differ = {name(p): source(cells(p)[SETUP_CELL]) if len(cells(p)) > SETUP_CELL else ""
              for p in book_notebooks()}
    differ = {n: s for n, s in differ.items() if s != reference}
    diffs = ["\n".join(difflib.unified_diff(reference.splitlines(), s.splitlines(), "index.ipynb",
                                            n, lineterm="")) for n, s in differ.items()]
    assert not differ, (f"cell {SETUP_CELL} differs from index.ipynb's setup cell in "
                        f"{list(differ)}:\n" + "\n".join(diffs))


def test_book_extra_covers_what_the_notebooks_import(project):
    """Every top-level module a notebook imports is the library's, the standard library's, or
    declared."""
    # the package itself, its dependencies, Jupyter
    provided = {"foundations", "torch", "numpy", "IPython"}
    provided |= {re.split(r"[<>=!~;\[ ]", r)[0].lower()
                 for r in project["optional-dependencies"]["book"]}
    missing = {}
    for p in book_notebooks():
        for cell in cells(p):
            if cell["cell_type"] != "code": continue
            for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", source(cell), re.M):
                top = m[1]
                if top in sys.stdlib_module_names or top in provided or top.lower() in provided:
                    continue
                missing.setdefault(top, set()).add(name(p))
    assert not missing, ("imported by notebooks but neither in the `book` extra nor the library's "
                         f"dependencies: {missing}")


def test_simulation_runs_every_cell(tmp_path):
    """Colab's Run all knows no nbdev directive: the simulated notebook keeps every code cell as
    code."""
    nb = {"cells": [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [],
                     "execution_count": None}
                    for s in ("#| eval: false\nx = 1", "#| notest\ny = 2", "z = 3")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    colab_sim.prepare(None, tmp_path / "nb.ipynb", nb)
    copied = json.loads((tmp_path / "nb.ipynb").read_text())["cells"]
    assert [c["cell_type"] for c in copied] == ["code"] * 3


def test_colab_package_list_is_pinned():
    pins = colab_sim.pinned_packages()
    assert pins[0].startswith("torch=="), "torch must come first: it is installed before the rest"
    bad = [p for p in pins if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.+]*", p)]
    assert not bad, f"every line of {colab_sim.PACKAGES.name} must pin one version: {bad}"
    assert "ipython==7.34.0" in [p.lower() for p in pins], "Colab's IPython is 7.34"


def test_release_version_check_both_ways(tmp_path):
    script = ROOT / "tools" / "check_release_version.py"
    init = (ROOT / "foundations" / "__init__.py").read_text()
    version = re.search(r'__version__\s*=\s*"([^"]+)"', init)[1]
    check = lambda *args: subprocess.run([sys.executable, str(script), *args],
                                         capture_output=True, text=True)
    good = check(f"v{version}")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = check(f"v{version}.post9")
    assert bad.returncode != 0 and version in bad.stderr, bad.stdout + bad.stderr
    # built files must carry the same version
    dist = tmp_path / "dist"; dist.mkdir()
    (dist / f"nn_foundations-{version}-py3-none-any.whl").write_text("")
    (dist / f"nn_foundations-{version}.tar.gz").write_text("")
    assert check(f"v{version}", "--dist", str(dist)).returncode == 0
    (dist / "nn_foundations-0.0.0.dev1.tar.gz").write_text("")
    stale = check(f"v{version}", "--dist", str(dist))
    assert stale.returncode != 0 and "0.0.0.dev1" in stale.stderr, stale.stderr


# --- the simulation ----------------------------------------------------------------------------

def cpu_seconds():
    "User + system CPU time of this process and of every child process waited for (kernels too)."
    return sum(getattr(resource.getrusage(who), f)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


class ColabReport:
    """Closing section of pytest's report: the time of each simulated notebook, and what pip
    installed."""
    def __init__(self):
        self.lines, self.results, self.start, self.end = [], {}, time.perf_counter(), None
        self.cpu_start, self.cpu, self.cleaned = cpu_seconds(), None, None

    def pytest_terminal_summary(self, terminalreporter):
        if not self.results: return
        write = terminalreporter.write_line
        terminalreporter.section("simulated Colab runtime")
        for line in self.lines: write(line)
        for nb, r in self.results.items():
            state = "ok" if r.get("ok") else f"FAILED at cell {r.get('cell')}"
            write(f"{r['seconds']:8.1f} s  {nb}  (setup cell {r.get('setup_seconds', 0):.1f} s) "
                  f"{state}")
        end = self.end or time.perf_counter()
        write(f"{end - self.start:8.1f} s  the whole simulation ({len(self.results)} notebooks, "
              f"{WORKERS} at a time, wheel and base environment included)")
        if self.cleaned:
            write(f"{self.cleaned - self.start:8.1f} s  ... and the copies deleted")
        if self.cpu is not None:
            write(f"{self.cpu:8.1f} s  CPU time of it (user + system, every process): "
                  f"the wall time on {WORKERS} idle cores is about half of this")
        sets = {}
        for nb, r in self.results.items():
            sets.setdefault(tuple(r.get("installed", [])), []).append(nb)
        for installed, nbs in sets.items():
            who = "every notebook" if len(sets) == 1 else ", ".join(nbs)
            write(f"the setup cell installed or changed ({who}): "
                  f"{' '.join(installed) or 'nothing'}")


@pytest.fixture(scope="module")
def colab(request, tmp_path_factory):
    "Start the simulation of every selected notebook, `WORKERS` at a time; `{path: future}`."
    report = ColabReport()
    request.config.pluginmanager.register(report, "colab-simulation-report")
    def chosen(test): return [item.callspec.params["notebook"] for item in request.session.items
                              if getattr(item, "originalname", "") == test]
    selected = chosen("test_notebook_on_colab")
    as_shipped = chosen("test_exercise_notebook_as_shipped_on_colab")
    t = time.perf_counter()
    wheel = colab_sim.build_wheel(tmp_path_factory.mktemp("colab-wheel"))
    report.lines.append(f"{time.perf_counter() - t:8.1f} s  building {wheel.name}")
    base, built = colab_sim.base_env()
    report.lines.append(f"{built:8.1f} s  building the base environment" if built else
                        f"     0.0 s  base environment from the cache: {base}")

    solved = solved_exercises(selected)
    cleaner = ThreadPoolExecutor(1, thread_name_prefix="colab-cleanup")   # deletes used copies
    for stale in colab_sim.stale_runs(): cleaner.submit(colab_sim.remove, stale)

    def one(nb, shipped=False):
        # one torch thread, as in the notebook tests, so that reductions round the same way
        cleanup = lambda d: cleaner.submit(colab_sim.remove, d)
        content = None if shipped else solved.get(nb)
        try: r = colab_sim.run_notebook(nb, base, wheel, cleanup, content, threads=1)
        except Exception as e:
            r = dict(ok=False, seconds=0.0, cell=None, source="", message=repr(e))
        report.results[name(nb) + (" (as shipped)" if shipped else "")] = r
        if len(report.results) == len(selected) + len(as_shipped):
            report.end, report.cpu = time.perf_counter(), cpu_seconds() - report.cpu_start
        return r

    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="colab")
    futures = {nb: pool.submit(one, nb) for nb in selected}
    futures.update({(nb, "as shipped"): pool.submit(one, nb, True) for nb in as_shipped})
    yield wheel, futures
    pool.shutdown(wait=True, cancel_futures=True)
    cleaner.shutdown(wait=True)
    report.cleaned = time.perf_counter()


@pytest.mark.colab
@pytest.mark.parametrize("notebook", book_notebooks(), ids=name)
def test_notebook_on_colab(notebook, colab, record_property):
    wheel, futures = colab
    r = futures[notebook].result()
    record_property("colab_seconds", round(r["seconds"], 1))
    if not r["ok"]:
        where = (f"cell {r['cell']} (counting every cell from 0)" if r.get("cell") is not None
                 else "before any cell ran")
        message = r.get("message", "")
        cell = ("" if r.get("source", "") in message
                else f"--- the cell ---\n{r.get('source', '')}\n")
        pytest.fail(f"{name(notebook)} fails on the simulated Colab runtime at {where}:\n"
                    f"{cell}--- the error ---\n{message[-6000:]}", pytrace=False)
    # exercise notebooks run solved: nothing stored to match
    if notebook.parent != NBS / "exercises":
        stored = stored_outputs.stored_cells(notebook)
        fresh = [None if i == SETUP_CELL else {"outputs": r["outputs"].get(str(i), [])}
                 if c["cell_type"] == "code" else None for i, c in enumerate(stored)]
        found = stored_outputs.differences(stored, fresh)
        assert not found, ("On the simulated Colab runtime, "
                           + stored_outputs.describe(notebook, found))
    version = wheel.name.split("-")[1]
    assert f"nn-foundations=={version}" in r["installed"], (
        f"{name(notebook)}: the setup cell did not install the wheel just built ({wheel.name}); "
        f"it installed {r['installed']}")


@pytest.mark.colab
@pytest.mark.parametrize("notebook", [p for p in book_notebooks() if p.parent == NBS / "exercises"],
                         ids=name)
def test_exercise_notebook_as_shipped_on_colab(notebook, colab):
    """A learner's first "Run all", before writing anything: it goes through, and each check says
    which function is not written yet (the promise on the exercises page)."""
    _, futures = colab
    r = futures[(notebook, "as shipped")].result()
    assert r["ok"], (f"{name(notebook)} as shipped stops at cell {r.get('cell')}:\n"
                     f"{r.get('message', '')[-3000:]}")
    printed = "".join("".join(o.get("text", "")) for outs in r["outputs"].values() for o in outs)
    checks = [c for c in json.loads(notebook.read_text())["cells"]
              if c["cell_type"] == "code" and "check(" in "".join(c["source"])]
    assert printed.count("not written yet") >= len(checks) > 0, printed[-2000:]
