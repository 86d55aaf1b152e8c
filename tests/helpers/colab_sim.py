"""A stock Google Colab runtime, simulated, for `tests/book/test_colab.py`.

- `base_env()` builds, once, a virtual environment with Colab's versions of what the book touches
  (`tests/helpers/colab_packages.txt`), plus a stand-in `google.colab` package that is imported at
  every interpreter start-up (a `.pth` file), as it is on Colab. It lives in a cache folder outside
  the repository, named by a hash of the package list and the Python version, so it survives between
  runs and is rebuilt when the list changes.
- `run_notebook()` makes a fresh copy of that environment for one notebook (`cp -al`: hard links,
  seconds; pip replaces files rather than editing them, so the base stays intact), runs the
  notebook in an empty working folder (as Colab does when it opens a notebook from GitHub: the
  notebook itself is not on the kernel's disk),
  makes the freshly built wheel installable by name (`PIP_FIND_LINKS`), and runs every cell with a
  real kernel of that environment, the setup cell included: its `pip install "nn-foundations[book]"`
  really runs, against the package index for everything but our own wheel.

Every code cell runs, as Colab's "Run all" runs it: nbdev's directives (`#| eval: false`, the
`notest` flag) are plain comments there, so a cell that only the author should run must be safe
on its own (guarded, or text), not merely skipped by nbdev's test runner.
"""
import fcntl, hashlib, json, os, platform, shutil, subprocess, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = HERE / "colab_packages.txt"
RUNNER = HERE / "colab_run_notebook.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nn-foundations"
CELL_TIMEOUT = 300   # seconds for one cell, setup cell included
NOTEBOOK_TIMEOUT = 1200  # seconds for a whole notebook, kernel start and shutdown included
RECIPE = 2           # bump when base_env() changes what it builds: the cache key includes it

FAKE_COLAB = ('"""Stand-in for Colab\'s own `google.colab`: the simulation needs it importable '
              'and imported."""\n')


def _run(*cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                           f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def pinned_packages(path=PACKAGES):
    "The `name==version` lines of the package list, in order (torch first)."
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def base_key():
    "What names the cached base environment: the package list and the Python that builds it."
    text = f"{PACKAGES.read_text()}{sys.version}{platform.machine()}{FAKE_COLAB}{RECIPE}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)


def site_packages(venv):
    return Path(_run(venv / "bin" / "python", "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())


def base_env():
    "The cached Colab-like environment: `(path, seconds spent building it now, 0 if cached)`."
    venv = CACHE / f"colab-base-{base_key()}"
    done = venv / "colab-base-complete"
    with _locked(CACHE / f"colab-base-{base_key()}.lock"):
        if done.exists(): return venv, 0.0
        start = time.perf_counter()
        shutil.rmtree(venv, ignore_errors=True)
        _run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        torch, *rest = pinned_packages()
        assert torch.startswith("torch=="), (
            f"{PACKAGES}: the first package must be torch, not {torch}")
        # pip itself at its current release: the one that `venv` bundles with Python 3.11 is from
        # 2023 and takes twice the CPU time to resolve the setup cell's install.
        _run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
        # torch first, so nothing pulls another build
        _run(python, "-m", "pip", "install", "-q", torch)
        _run(python, "-m", "pip", "install", "-q", *rest)
        colab = site_packages(venv) / "google" / "colab"
        colab.mkdir(parents=True)
        (colab / "__init__.py").write_text(FAKE_COLAB)
        # A .pth line starting with `import` runs at every start-up of this Python, kernels
        # included.
        (colab.parent.parent / "colab_sim.pth").write_text("import google.colab\n")
        freeze = _run(python, "-m", "pip", "list", "--format=freeze")
        (venv / "colab-base-freeze.txt").write_text(freeze)
        done.write_text("")
        for old in CACHE.glob("colab-base-*"):   # bases for older package lists: 1.4 GB each
            if old.is_dir() and old != venv: shutil.rmtree(old, ignore_errors=True)
        return venv, time.perf_counter() - start


def stale_runs():
    "Copies left in the cache by runs that were killed before they could delete them."
    runs = CACHE / "colab-runs"
    def alive(pid):
        try: os.kill(pid, 0)
        except ProcessLookupError: return False
        except PermissionError: pass
        return True
    return [d for d in (runs.iterdir() if runs.is_dir() else [])
            if not (d.name.split("-", 1)[0].isdigit() and alive(int(d.name.split("-", 1)[0])))]


def build_wheel(out):
    """Build the project's wheel into folder `out` (no dependencies, no isolation) and return its
    path."""
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", out, HERE.parent.parent)
    (wheel,) = Path(out).glob("nn_foundations-*.whl")
    return wheel


def prepare(notebook, dest, nb=None):
    "Copy `notebook` (or the notebook dict `nb` in its place) to `dest`, every cell as it is."
    nb = json.loads(Path(notebook).read_text()) if nb is None else nb
    Path(dest).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def clean_env(venv, wheels, jupyter, runtime, threads=None):
    """The environment of the simulated runtime: its own Python first, our wheel findable by name,
    and `threads` OpenMP threads for torch if given (so notebooks run side by side share the cores
    instead of fighting over them; the number of threads changes no result)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "JUPYTER", "IPYTHON", "MPL"))
           and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "IN_TEST", "CONDA_PREFIX")}
    path = [p for p in env.get("PATH", "").split(os.pathsep)
            if p and Path(p).resolve() != Path(sys.executable).parent.resolve()]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    # Our wheel first; any folders of wheels this machine already uses stay (pip reads the variable
    # as a space-separated list, and it replaces pip's configured find-links).
    env["PIP_FIND_LINKS"] = " ".join([str(wheels), *os.environ.get("PIP_FIND_LINKS", "").split()])
    env["PIP_NO_INPUT"] = "1"
    env["JUPYTER_PATH"] = str(jupyter)          # the kernelspec below, before any other
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    if threads: env["OMP_NUM_THREADS"] = str(threads)
    return env


def _run_folder(notebook):
    """A new folder for one run of `notebook`, of its own (chapters and their exercise notebooks
    share names), named by this process so that `stale_runs` can tell a dead run's leftovers."""
    runs = CACHE / "colab-runs"
    runs.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{Path(notebook).stem}-", dir=runs))


def _folders(run_dir):
    "The run's `venv`, `content` (the kernel's working folder), `jupyter` and `runtime` folders."
    return tuple(run_dir / n for n in ("venv", "content", "jupyter", "runtime"))


def _prepare_run(run_dir, base, notebook, nb):
    """Fill `run_dir`: a hard-linked copy of `base`, empty working and runtime folders, a kernelspec
    of that copy, and the notebook (`nb` in its place if given); return the notebook's copy."""
    venv, content, jupyter, runtime = _folders(run_dir)
    _run("cp", "-al", base, venv)
    for d in (content, runtime): d.mkdir()
    spec = jupyter / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "Python 3 (simulated Colab)", "language": "python"}))
    # Colab keeps the notebook elsewhere: the kernel's working folder (/content) starts empty
    (run_dir / "notebook").mkdir()
    nb_copy = run_dir / "notebook" / Path(notebook).name
    prepare(notebook, nb_copy, nb)
    return nb_copy


def _run_kernel(run_dir, nb_copy, out, wheel, threads):
    """Run every cell of `nb_copy` with the run's own Python (`colab_run_notebook.py`), which writes
    its report to `out`; return the finished process."""
    venv, content, jupyter, runtime = _folders(run_dir)
    return subprocess.run([str(venv / "bin" / "python"), str(RUNNER), str(nb_copy), str(out),
                           str(CELL_TIMEOUT)], cwd=content, capture_output=True, text=True,
                          env=clean_env(venv, wheel.parent, jupyter, runtime, threads),
                          timeout=NOTEBOOK_TIMEOUT)


def _failure(start, message):
    "The result of a run that ended without the runner's report."
    return dict(ok=False, seconds=time.perf_counter() - start, cell=None, source="",
                message=message)


def _installed(base, distributions):
    "`name==version` of every distribution that is new or changed since the `base` environment."
    before = dict(pin.split("==", 1) for pin in (base / "colab-base-freeze.txt").read_text().split()
                  if "==" in pin)
    before = {canonical(k): v for k, v in before.items()}
    after = {canonical(k): v for k, v in distributions.items()}
    return sorted(f"{k}=={v}" for k, v in after.items() if before.get(k) != v)


def _setup_cell(nb_copy):
    "The index of the notebook's setup cell: its first code cell that mentions `google.colab`."
    nb = json.loads(nb_copy.read_text())
    return next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and "google.colab" in "".join(c["source"])), None)


def _read_result(out, base, nb_copy, start):
    "The runner's report in `out`, with what the setup cell installed and the seconds it took."
    result = json.loads(out.read_text())
    result["installed"] = _installed(base, result.pop("distributions"))
    result["setup_seconds"] = dict(result["cells"]).get(_setup_cell(nb_copy), 0.0)
    result["seconds"] = time.perf_counter() - start
    return result


def run_notebook(notebook, base, wheel, cleanup=None, nb=None, threads=None):
    """Run every cell of `notebook` on a fresh copy of the `base` environment; return a dict: `ok`,
    `seconds`, `setup_seconds` (the setup cell), `installed` (what the setup cell added or changed,
    `name==version`), `outputs` (`{cell index: outputs}`), and for a failure the failing `cell`,
    its `source` and `message`.
    `nb`, a notebook dict, runs in place of the file's content (under the file's name); `threads`
    is the number of torch threads (default: torch's own choice, all cores).
    The copy is deleted at the end, by `cleanup(folder)` if given (deleting 46,000 hard links is
    slow disk work that need not hold up the next notebook), else here."""
    start = time.perf_counter()
    run_dir = _run_folder(notebook)
    try:
        nb_copy = _prepare_run(run_dir, base, notebook, nb)
        out = run_dir / "result.json"
        try: proc = _run_kernel(run_dir, nb_copy, out, wheel, threads)
        except subprocess.TimeoutExpired as e:
            return _failure(start, f"the notebook ran past {NOTEBOOK_TIMEOUT} s:\n"
                                   f"{e.stdout or ''}\n{e.stderr or ''}")
        if not out.exists():
            return _failure(start, f"the runner stopped ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return _read_result(out, base, nb_copy, start)
    finally:
        (cleanup or remove)(run_dir)


def remove(folder):
    "Delete `folder` (`rm -rf`: several times cheaper than `shutil.rmtree` on 46,000 hard links)."
    subprocess.run(["rm", "-rf", "--", str(folder)], capture_output=True)


def canonical(name):
    "A distribution name as pip compares them (`Jupyter_Client` and `jupyter-client` are one)."
    return name.lower().replace("_", "-").replace(".", "-")
