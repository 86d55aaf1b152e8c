"""The linter and the shape of the code, as part of the suite.

`ruff check` (rules in pyproject.toml's [tool.ruff]) on the library, the tools, the tests and the
notebooks; tools/code_shape.py for what ruff cannot see through nbdev's layout: functions of at
most 40 lines in foundations/ and tools/, lines of at most 100 columns in the generated modules
and the notebooks' code cells. Run: `pytest tests/book/test_lint.py`.
"""
import importlib.util, json, shutil, subprocess, sys
from pathlib import Path

import pytest

from helpers import ROOT



def _ruff():
    "The ruff executable of this environment (installed by the dev extra), or None."
    found = Path(sys.executable).with_name("ruff")
    return str(found) if found.exists() else shutil.which("ruff")


def test_ruff_is_clean():
    ruff = _ruff()
    if ruff is None: pytest.skip("ruff is not installed: pip install -e '.[dev]'")
    result = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise",
                             "foundations", "tools", "tests", "nbs"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_functions_and_lines_are_short():
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "tools" / "code_shape.py")
    code_shape = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code_shape)
    assert code_shape.problems() == []


def test_code_shape_finds_what_is_too_long(tmp_path):
    "The checker itself: a long function, a long generated line, a long notebook line are found."
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "tools" / "code_shape.py")
    code_shape = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code_shape)
    for folder in ("foundations", "tools", "nbs"): (tmp_path / folder).mkdir()
    summary, names = "a summary " * 15, ", ".join(["'x'"] * 40)
    header = f'"""{summary}"""\n\n__all__ = [{names}]\n'   # nbdev's header: long, and allowed
    body = "def f():\n" + "    x = 1\n" * 40 + f"    return {'x + ' * 30}x\n"
    (tmp_path / "foundations" / "m.py").write_text(header + body)
    (tmp_path / "tools" / "t.py").write_text("def g(): return 1\n")
    cell = {"cell_type": "code", "source": [f"#| code-summary: \"{'y' * 120}\"\n", "z" * 101]}
    (tmp_path / "nbs" / "n.ipynb").write_text(json.dumps({"cells": [cell]}))
    found = code_shape.problems(tmp_path)
    assert found == ["foundations/m.py:4: function f has 42 lines",
                     "foundations/m.py:45: 132 columns",
                     "nbs/n.ipynb: cell 0, line 2: 101 columns"], found
