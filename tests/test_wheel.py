"""The wheel installs into a clean virtual environment without the dev extra, and every module of
`foundations` imports there without nbdev, matplotlib, SymPy or Jupyter.

The clean environment first gets the same torch and numpy versions as this one (on the project's
machines pip finds the CPU wheel of torch on disk, so no CUDA build is fetched), then the wheel
with `--no-index`, so nothing beyond its declared dependencies can sneak in.
"""
import subprocess, sys, zipfile
from pathlib import Path

import pytest
import numpy
import torch

from conftest import ROOT

DEV_ONLY = ["nbdev", "matplotlib", "sympy", "IPython", "jupyter", "jupyter_core", "notebook",
            "fastcore", "execnb", "hypothesis", "pytest", "pypandoc", "playwright"]


def run(*cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


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


def test_wheel_imports_in_a_clean_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", f"torch=={torch.__version__}", f"numpy=={numpy.__version__}")
    run(python, "-m", "pip", "install", "-q", "--no-index", wheel)
    installed = run(python, "-m", "pip", "list", "--format=freeze").lower()
    # sympy arrives with torch (a dependency of torch itself), so only its import is checked below
    assert not [m for m in DEV_ONLY if f"\n{m.lower()}==" in "\n" + installed and m != "sympy"], installed
    script = (
        "import importlib, sys, warnings\n"
        "warnings.simplefilter('error')\n"   # a warning at import (e.g. from torch) is a failure
        "import torch\n"
        "already = set(sys.modules)\n"
        f"for name in {modules_in(wheel)!r}: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in {DEV_ONLY!r} if m in sys.modules and m not in already)\n"
        "assert not loaded, f'importing foundations loaded {loaded}'\n"
        "from foundations.training import load_digits\n"  # the shipped data set loads from the wheel
        "x, y = load_digits(); assert x.shape == (1797, 64) and y.shape == (1797,), (x.shape, y.shape)\n"
        "import foundations; print(foundations.__version__, foundations.__file__)\n")
    out = run(python, "-c", script, cwd=tmp_path)  # not the repository: import the installed copy
    assert str(venv) in out, out
