"""Write the exercise notebooks, `nbs/exercises/NN_name.ipynb`, from the chapters.

For every function and class that `foundations.exercises.check` can grade, this finds the cell of
its chapter that defines it (by the name it defines, never by position), and writes an exercise
notebook per chapter: the chapter's title and first cells (Open-in-Colab badge, hidden setup cell),
the chapter's import cells, then for each exercise the markdown cells just before its definition,
the definition with its signature and docstring kept and its body replaced by a stub, and a
`check(...)` cell. The notebooks export nothing, and each `check` cell carries `#| notest`, so that
`nbdev-test` (and the Colab simulation) run the rest of the notebook and skip the checks, which fail
on purpose until the reader has written the code. The output depends only on the chapters and the
library, so the test `tests/library/test_exercises.py` can regenerate them and compare.

Run from the repository root after changing a chapter (and `nbdev-export`):

    python tools/make_exercises.py            # writes nbs/exercises/
    python tools/make_exercises.py --out DIR  # writes them somewhere else, e.g. to compare
"""
import argparse, ast, functools, hashlib, importlib, json, re
try: import tomllib                     # Python 3.11+
except ModuleNotFoundError: import tomli as tomllib   # Python 3.10: the same parser, from PyPI
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
STUB = 'raise NotImplementedError("your code here")'
CHECK_FLAG = "#| notest"   # nbdev-test skips the cell: the check fails while the stub is there
KEEP_METHODS = {"__repr__", "extra_repr"}   # a stub here would break printing, not teach


def _source(cell): return "".join(cell["source"])


@functools.lru_cache(maxsize=None)
def _cells(path, mtime):
    "The cells of the notebook at `path` (cached while its modification time stays `mtime`)."
    return json.loads(Path(path).read_text())["cells"]


def cells_of(path): return _cells(str(path), Path(path).stat().st_mtime_ns)


def _split_directives(source):
    "The `#| ...` directive lines at the top of a cell, and the code after them."
    lines = source.splitlines()
    n = 0
    while n < len(lines) and lines[n].startswith("#|"): n += 1
    return lines[:n], "\n".join(lines[n:])


def _defined_names(code):
    "Functions and classes defined at the top level of `code` (none if it does not parse)."
    try: tree = ast.parse(code)
    except SyntaxError: return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _is_exported(directives): return any(re.match(r"#\|\s*export", d) for d in directives)


def _imports(code):
    "The top-level import statements of `code`, as source lines."
    try: tree = ast.parse(code)
    except SyntaxError: return []
    lines = code.splitlines()
    return ["\n".join(lines[n.lineno - 1:n.end_lineno]) for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom))]


def _import_line(prefix, names, width=100):
    "`prefix` and `names`, wrapped in parentheses within `width` columns if one line is longer."
    one = prefix + ", ".join(names)
    if len(one) <= width: return one
    lines, line = [], prefix + "("
    for k, name in enumerate(names):
        piece = name + ("," if k < len(names) - 1 else ")")
        if len(line) + len(piece) + 1 > width: lines, line = lines + [line.rstrip()], "    "
        line += piece + " "
    return "\n".join(lines + [line.rstrip()])


def _without(line, names):
    "The import `line` without the `names` it imports (an exercise's answer); '' if none is left."
    m = re.match(r"(from \S+ import )(.+)$", line)
    if not m: return line
    kept = [n.strip() for n in m[2].split(",") if n.strip().split(" as ")[0] not in names]
    return _import_line(m[1], kept) if kept else ""


def _is_helper(cell):
    "An exported code cell that defines only private names (`_check_tensor`): helpers."
    if cell["cell_type"] != "code": return False
    directives, code = _split_directives(_source(cell))
    names = _defined_names(code)
    return _is_exported(directives) and bool(names) and all(n.startswith("_") for n in names)


def _rebase_links(markdown):
    "Relative links and image paths of a chapter's markdown, made to work in nbs/exercises/."
    relative = r"(?![a-zA-Z][\w+.-]*:|#|/)"
    markdown = re.sub(rf"\]\({relative}", "](../", markdown)
    return re.sub(rf'\b(src|href)="{relative}', r'\1="../', markdown)


def _without_pointers(markdown):
    """The chapter's prose without what points at its own code (the `return` below, a folded helper,
    the test below): an exercise notebook has the stub there instead."""
    markdown = re.sub(r",(?: which| and what)[^,.;]*\bbelow\b[^,.;]*", "", markdown)   # a clause
    sentences = re.split(r"(?<=[.!?])(\s+)", markdown)
    stale = re.compile(r"\bbelow\b|the line before it|folded helper", re.I)
    return "".join(s for s in sentences if not stale.search(s)).strip()


def _lead_in(cells, index):
    """The markdown cells just before the exercise's cell, back to its heading: [(kind, source)].

    The chapter's private helpers in between (`_check_tensor`, `_normal_weights`) are skipped: some
    do the exercise's work, and the reader writes their own."""
    lead, j = [], index - 1
    while j >= 0 and (cells[j]["cell_type"] == "markdown" or _is_helper(cells[j])):
        if cells[j]["cell_type"] == "markdown":
            text = _source(cells[j])
            heading = re.search(r"^#{1,6} ", text, flags=re.M)
            text = _without_pointers(text[heading.start():] if heading else text)
            lead.insert(0, ("markdown", _rebase_links(text)))
            if heading: break
        j -= 1
    return lead


def chapters():
    "Chapter notebooks (`nbs/NN_name.ipynb`, NN from 01) by module, e.g. {'matmul': Path(...)}."
    found = {}
    for path in sorted(NBS.glob("[0-9][0-9]_*.ipynb")):
        if path.name.startswith("00_"): continue
        for cell in cells_of(path):
            m = re.match(r"#\|\s*default_exp\s+(\S+)", _source(cell))
            if cell["cell_type"] == "code" and m: found[m[1]] = path; break
    return found


def find_definition(cells, name):
    "Index of the code cell that defines `name` at its top level, preferring an exported cell."
    candidates = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code": continue
        directives, code = _split_directives(_source(cell))
        if name in _defined_names(code): candidates.append((not _is_exported(directives), i))
    if not candidates: return None
    return min(candidates)[1]


def _stub_function(lines, node):
    "Replace the body of function `node` in `lines` (a cell's code) by the stub, docstring kept."
    body = node.body
    has_doc = isinstance(body[0], ast.Expr) \
        and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)
    first = body[1] if has_doc and len(body) > 1 else None if has_doc else body[0]
    if first is None:   # only a docstring: add the stub after it
        indent = " " * body[0].col_offset
        end = body[0].end_lineno
        lines[end - 1:end] = [lines[end - 1], indent + STUB]
        return
    start, end = first.lineno - 1, node.end_lineno - 1
    if first.lineno == node.lineno or lines[start][:first.col_offset].strip():   # on the `def` line
        line = lines[start]
        lines[start:end + 1] = [line[:first.col_offset] + STUB]
        return
    lines[start:end + 1] = [" " * first.col_offset + STUB]


def make_stub(code, name):
    "`code` with the body of `name` (a function, or each method of a class) replaced by the stub."
    tree = ast.parse(code)
    node = next(n for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
    lines = code.splitlines()
    if isinstance(node, ast.FunctionDef): targets = [node]
    else: targets = [m for m in node.body
                     if isinstance(m, ast.FunctionDef) and m.name not in KEEP_METHODS]
    for target in sorted(targets, key=lambda n: n.lineno, reverse=True):
        _stub_function(lines, target)
    return "\n".join(lines)


def _cell(kind, source, nb_name, index):
    cell_id = hashlib.sha1(f"{nb_name}:{index}:{kind}".encode()).hexdigest()[:8]
    cell = {"cell_type": kind, "id": cell_id, "metadata": {},
            "source": source.splitlines(keepends=True)}
    if kind == "code": cell.update(execution_count=None, outputs=[])
    return cell


def _repository():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/")


def _frame(chapter, cells):
    "The notebook's first cells: title, Open-in-Colab badge, the chapter's setup, introduction."
    title = _source(cells[0]).splitlines()[0].removeprefix("# ").strip()
    setup = next(_source(c) for c in cells[:4]
                 if c["cell_type"] == "code" and "google.colab" in _source(c))
    github = re.match(r"https://github.com/(.+)$", _repository())[1]
    colab = f"https://colab.research.google.com/github/{github}/blob/main/nbs/exercises/"
    return [("markdown", f"# Exercises: {title}\n\n> Write the functions of the chapter *{title}* "
                         "yourself; `check` grades each one against the book's library and tells "
                         "you what is wrong."),
            ("markdown", f"[![Open in Colab](../images/colab-badge.svg)]({colab}{chapter.name})"),
            ("code", setup), ("markdown", _introduction(chapter.name))]


def _import_cells(cells, module, exercised, solutions):
    "The chapter's imports and the library's public names, never one the notebook asks for."
    imports = [line for c in cells
               if c["cell_type"] == "code" and _is_exported(_split_directives(_source(c))[0])
               for line in _imports(_split_directives(_source(c))[1])]
    imports = [kept for line in imports if (kept := _without(line, exercised))]
    if not any(re.match(r"import torch$", line) for line in imports):
        imports.insert(0, "import torch")
    public = [n for n in getattr(importlib.import_module(f"foundations.{module}"), "__all__", [])
              if n not in exercised]
    library = "from foundations.exercises import check, hint, progress"
    if public: library += "\n" + _import_line(f"from foundations.{module} import ", public)
    out = [("code", "\n".join(imports + [library]))]
    if solutions:   # the chapter module's names, private helpers included: the book's answer
        out.append(("code", f"import foundations.{module} as _chapter\n"
                            "globals().update({k: v for k, v in vars(_chapter).items() "
                            "if not k.startswith('__')})"))
    return out


def _chapter_exercises(chapter, cells, names, solutions):
    "For each exercise cell of the chapter: its lead-in, its stub, a check each, a solution."
    found = [(find_definition(cells, key.rsplit(".", 1)[-1]), key) for key in names]
    missing = [key for index, key in found if index is None]
    if missing: raise LookupError(f"{chapter.name} defines no cell for the exercises {missing}")
    by_cell, out = {}, []   # a cell may define several exercises (say, three layer classes)
    for index, key in sorted(found): by_cell.setdefault(index, []).append(key)
    for index, keys in by_cell.items():
        out += _lead_in(cells, index)
        code = solution = _split_directives(_source(cells[index]))[1]
        if not solutions:
            for key in keys: code = make_stub(code, key.rsplit(".", 1)[-1])
        out.append(("code", code))
        out += [("code", f'{CHECK_FLAG}\ncheck("{key}", {key.rsplit(".", 1)[-1]})') for key in keys]
        out.append(("markdown", _folded(solution)))
    return out


def _catalogue_exercises(stubs, solutions):
    "The exercises whose stub the catalogue writes (the engine's core), each with its check."
    out = []
    for key, stub in stubs.items():
        if stub["intro"]: out.append(("markdown", stub["intro"]))
        out.append(("code", stub["solution"] if solutions else stub["code"]))
        out.append(("code", f'{CHECK_FLAG}\ncheck("{key}", {key})'))
        out.append(("markdown", _folded(stub["solution"])))
    return out


def exercise_notebook(chapter, names, module, solutions=False):
    """The exercise notebook for `chapter` (a path) and its exercises `names` (keys of `check`).

    With `solutions=True` each stub is replaced by the chapter's own cell, and a first code cell
    puts the chapter module's names (private helpers included) in scope: for testing."""
    from foundations.exercises import exercise_named
    cells = cells_of(chapter)
    stubs = {key: exercise_named(key).stub for key in names if exercise_named(key).stub}
    exercised = {key.rsplit(".", 1)[-1] for key in names}   # never import what this one asks for
    out = _frame(chapter, cells) + _import_cells(cells, module, exercised, solutions)
    if stubs: out.append(("code", next(iter(stubs.values()))["imports"]))
    out += _chapter_exercises(chapter, cells, [k for k in names if k not in stubs], solutions)
    out += _catalogue_exercises(stubs, solutions)
    nb_name = f"exercises/{chapter.name}"
    kernel = {"display_name": "python3", "language": "python", "name": "python3"}
    return {"cells": [_cell(kind, source, nb_name, i) for i, (kind, source) in enumerate(out)],
            "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}


def _introduction(chapter_name):
    "The exercise notebook's own introduction: how to work through it, and what `check` says."
    return (
        f"Each exercise below is a function (or a class) from [the chapter](../{chapter_name}), "
        "with the chapter's explanation before it. Its signature and docstring are kept, and its "
        f"body is `{STUB}`: replace that line with your code, run the cell, then run the `check` "
        "cell below it. `check` grades your code only (this notebook never imports the names it "
        "asks for) on many inputs, and answers in one of three ways: how many cases agree; "
        "`not written yet` while the stub is there (so *Run all* goes on to the next exercise); or "
        "an `AssertionError` with the smallest failing case, what was expected, what came "
            "back, and "
        "a hint only when your outputs match a known slip on inputs that tell it apart. "
        "`hint(\"name\")` gives graduated hints, `progress()` lists what passed, and a solution is "
        "folded under each check. The chapter's private helpers are left out: write your own where "
        "you need one. Later exercises may call earlier ones, so work from the top. (The line "
        "`#| notest` above each check tells the book's own test runner to skip it.) How the "
        "grading works: [Exercises](../10_exercises.ipynb).")


def _folded(code):
    """A solution folded in a markdown `<details>` block: collapsed in Jupyter, Colab and Quarto
    alike, and never run by "Run all"."""
    return f"<details><summary>A solution</summary>\n\n```python\n{code}\n```\n\n</details>"


def exercise_notebooks(solutions=False):
    "Every exercise notebook, as {file name: notebook dict}, in chapter order."
    from foundations.exercises import exercise_modules
    by_module = {}
    for key, module in exercise_modules().items(): by_module.setdefault(module, []).append(key)
    found = chapters()
    missing = sorted(set(by_module) - set(found))
    if missing: raise LookupError(
        f"no chapter notebook says `#| default_exp` for the modules {missing}")
    return {found[m].name: exercise_notebook(found[m], names, m, solutions) for m, names in
            sorted(by_module.items(), key=lambda kv: found[kv[0]].name)}


def as_text(nb):   # as nbdev-clean writes it
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write(out_dir):
    "Write every exercise notebook into `out_dir` (removing ones no chapter asks for): the paths."
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notebooks = exercise_notebooks()
    for stale in out_dir.glob("*.ipynb"):
        if stale.name not in notebooks: stale.unlink()
    written = []
    for name, nb in notebooks.items():
        (out_dir / name).write_text(as_text(nb))
        written.append(out_dir / name)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(NBS / "exercises"), help=
        "output folder (default: nbs/exercises)")
    args = parser.parse_args(argv)
    for path in write(args.out): print(f"  wrote {path}")


if __name__ == "__main__":
    main()
