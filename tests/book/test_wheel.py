"""The wheel installs into a clean virtual environment without the dev extra, and every module of
`foundations` imports there without nbdev, matplotlib, SymPy or Jupyter.

The clean environment is a new venv (no system site-packages) that holds only torch, numpy and the
packages torch itself requires, taken from this environment as links (the same versions, and no
750 MB copy of torch), then the wheel installed by pip with `--no-index`: pip sees its declared
dependencies already there, so nothing beyond them can sneak in, and a dependency the wheel
declares but the clean venv lacks makes pip fail.
"""
import subprocess, sys, sysconfig, zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers import ROOT

DEV_ONLY = ["nbdev", "matplotlib", "sympy", "IPython", "jupyter", "jupyter_core", "notebook",
            "fastcore", "execnb", "hypothesis", "pytest", "pypandoc", "playwright"]
RUNTIME = ["torch",
           "numpy"]   # what the wheel declares; the clean venv gets these and their requirements


def run(*cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, \
        f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def requirement_closure(names):
    """The installed distributions `names` need to run, themselves included (requirements without
    extras)."""
    found, todo = {}, list(names)
    while todo:
        dist = distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found: continue
        found[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}): todo.append(req.name)
    return found


def link_into(site_packages, dists):
    """Make each distribution's top-level files (packages, modules, .dist-info) appear in
    `site_packages`."""
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in dists:
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            if top.endswith(".pth") or not (here / top).exists():
                continue  # scripts live outside, .pth would run code
            (site_packages / top).symlink_to(here / top)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, ROOT)
    (path,) = out.glob("nn_foundations-*.whl")
    return path


def modules_in(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    return sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in names
                  if n.startswith("foundations/") and n.endswith(".py"))


def test_wheel_holds_every_module_and_data_file(wheel):
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "foundations"
    on_disk = {p.relative_to(ROOT).as_posix() for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert on_disk <= in_wheel, f"missing from the wheel: {sorted(on_disk - in_wheel)}"
    assert "foundations/data/digits.csv.gz" in in_wheel and "foundations/data/README.md" in in_wheel


def test_wheel_declares_only_the_runtime_dependencies(wheel):
    name, version = wheel.name.split("-")[:2]
    meta = zipfile.ZipFile(wheel).read(f"{name}-{version}.dist-info/METADATA")
    declared = {Requirement(line.split(":", 1)[1].strip()) for line in meta.decode().splitlines()
                if line.startswith("Requires-Dist:")}
    plain = sorted(r.name for r in declared if r.marker is None)
    assert plain == sorted(RUNTIME), \
        f"the wheel requires {plain} without an extra; the clean venv below has only {RUNTIME}"


def test_wheel_imports_in_a_clean_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site_packages = Path(run(python, "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    runtime = requirement_closure(RUNTIME)
    assert not set(runtime) & {m.lower() for m in DEV_ONLY} - {"sympy"}, sorted(runtime)
    link_into(site_packages, runtime.values())
    # pip (this environment's, run for the clean interpreter) installs the wheel from the file alone
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", wheel)
    script = (
        "import importlib, importlib.metadata, importlib.util, sys, warnings\n"
        "installed = {d.metadata['Name'].lower().replace('_', '-') for d in "
        "importlib.metadata.distributions()}\n"
        "assert 'nn-foundations' in installed, sorted(installed)\n"
        # sympy arrives with torch (a dependency of torch itself), so only its import is checked
        "assert not installed & "
        f"{set(m.lower().replace('_', '-') for m in DEV_ONLY) - {'sympy'}!r}, sorted(installed)\n"
        "warnings.simplefilter('error')\n"   # a warning at import (e.g. from torch) is a failure
        f"present = [m for m in {DEV_ONLY!r} if m != 'sympy' and importlib.util.find_spec(m)]\n"
        "assert not present, f'dev-only packages importable in the clean venv: {present}'\n"
        "import torch\n"
        "already = set(sys.modules)\n"
        f"for name in {modules_in(wheel)!r}: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in {DEV_ONLY!r} if m in sys.modules and m not in already)\n"
        "assert not loaded, f'importing foundations loaded {loaded}'\n"
        # the shipped data set loads from the wheel
        "from foundations.training import load_digits\n"
        "x, y = load_digits(); assert x.shape == (1797, 64) and y.shape == (1797,), (x.shape, "
        "y.shape)\n"
        "import foundations; print(foundations.__version__, foundations.__file__)\n")
    out = run(python, "-I", "-c", script,
              cwd=tmp_path)  # not the repository: import the installed copy
    assert str(venv) in out, out
