"""Check the shape of the code: functions of at most 40 lines, lines of at most 100 columns.

ruff (configured in pyproject.toml) checks the line length of tools/ and tests/. This script
checks what ruff cannot, because nbdev lays it out:

- foundations/*.py, which `nbdev-export` writes: every line but nbdev's own header (the module
  docstring, from the chapter's one-line summary, and `__all__`, which nbdev wraps at 120);
- the code cells of the notebooks in nbs/, less their `#|` lines (cell options for nbdev and
  Quarto, such as a fold's one-line summary, which cannot be wrapped);
- the length of every function and method in foundations/ and tools/, decorators and docstring
  included.

    python tools/code_shape.py        # lists what is too long; exit status 1 if anything is
"""
import ast, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE, MAX_FUNCTION = 100, 40

# Functions allowed to be longer, each with its reason ("path:name": why).
LONG_ON_PURPOSE = {}

# Files owned by other issues when this check was written; each entry goes when its owner's
# branch is merged and the file is within the limits. Nothing else may be added here.
NOT_YET = {}   # paths whose owners have yet to shorten them: none now


def _skipped(path):
    "Is `path` (relative to the root) in NOT_YET, itself or through a folder?"
    return any(path == p or path.startswith(p + "/") for p in NOT_YET)


def nbdev_header_end(tree):
    "The last line of nbdev's header in a generated module: its docstring and `__all__`."
    end = 0
    for node in tree.body[:3]:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        is_all = isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "__all__" for target in node.targets)
        if is_doc or is_all: end = node.end_lineno
    return end


def long_lines(text, first=1, skip=lambda line: False):
    "(line number, length) of each line over MAX_LINE, from line `first` on."
    return [(i, len(line)) for i, line in enumerate(text.split("\n"), 1)
            if i >= first and len(line) > MAX_LINE and not skip(line)]


def long_functions(tree):
    "(line number, name, length) of each function or method over MAX_FUNCTION lines."
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = node.end_lineno - start + 1
            if length > MAX_FUNCTION: found.append((node.lineno, node.name, length))
    return found


def notebook_lines(path):
    "(cell number, line, length) of each code line over MAX_LINE in a notebook, `#|` lines aside."
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, n, length) for i, cell in enumerate(cells) if cell["cell_type"] == "code"
            for n, length in long_lines("".join(cell["source"]),
                                        skip=lambda line: line.lstrip().startswith("#|"))]


def problems(root=ROOT):
    "Every function and line that is too long, as readable strings."
    found = []
    for path in sorted((root / "foundations").glob("*.py")) + sorted((root / "tools").glob("*.py")):
        rel = path.relative_to(root).as_posix()
        if path.name == "_modidx.py" or _skipped(rel): continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for line, name, length in long_functions(tree):
            if f"{rel}:{name}" not in LONG_ON_PURPOSE:
                found.append(f"{rel}:{line}: function {name} has {length} lines")
        if rel.startswith("foundations/"):   # tools/ is ruff's (E501)
            for line, length in long_lines(text, first=nbdev_header_end(tree) + 1):
                found.append(f"{rel}:{line}: {length} columns")
    for path in sorted((root / "nbs").rglob("*.ipynb")):
        rel = path.relative_to(root).as_posix()
        if _skipped(rel) or "/." in rel: continue
        found += [f"{rel}: cell {cell}, line {line}: {length} columns"
                  for cell, line, length in notebook_lines(path)]
    return found


if __name__ == "__main__":
    found = problems()
    print("\n".join(found) or "Every function and line is within the limits.")
    sys.exit(1 if found else 0)
