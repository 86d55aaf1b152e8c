"""Build nbs/10_exercises.ipynb's grader cells and the three catalogue appendix notebooks from scratch/*.py."""
import json, re, hashlib
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent

def chunks(path):
    text = (ROOT / "scratch" / path).read_text()
    parts = re.split(r'^# %% (.*)$', text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1].strip('\n')) for i in range(1, len(parts), 2)]

def cell(kind, text, key):
    cid = hashlib.sha1(f"ex24:{key}".encode()).hexdigest()[:8]
    c = {"cell_type": kind, "id": cid, "metadata": {}, "source": text.splitlines(keepends=True)}
    if kind == "code": c.update(execution_count=None, outputs=[])
    return c

SETUP = json.loads((ROOT / "nbs/00_core.ipynb").read_text())["cells"][2]

PAGES = {
    "by_hand": ("catalogue_a.py", "Appendix: exercises 1-4",
                "Cases, slips and hints of chapters 1 to 4."),
    "layers": ("catalogue_b.py", "Appendix: exercises 5-9",
               "Cases, slips and hints of chapters 5 to 9."),
    "engine": ("catalogue_c.py", "Appendix: the engine as exercises",
               "Chapter 9's engine core: order, backward, ops."),
}

def appendix(part):
    source, title, summary = PAGES[part]
    name = f"00_exercises_{part}.ipynb"
    cells = [cell("markdown", f"# {title}\n\n> {summary}", f"{part}:t"),
             cell("markdown", f"[![Open in Colab](images/colab-badge.svg)](https://colab.research."
                  f"google.com/github/nn-foundations/foundations/blob/main/nbs/{name})", f"{part}:b"),
             cell("code", "".join(SETUP["source"]), f"{part}:s"),
             cell("code", f"#| default_exp exercises_{part}", f"{part}:d"),
             cell("markdown", "How `check` grades is explained in [Exercises](10_exercises.ipynb). "
                  "This page holds, for each exercise, what the grader needs: the cases (smallest "
                  "first, both float32 and float64, the promises of the docstring), how to run a "
                  "function on one, the known slips with the hint each earns, and the idea that "
                  "opens its graduated hints. A slip's hint is given only when the learner's "
                  "outputs match the slip's on a case that tells it apart from the others.",
                  f"{part}:i")]
    for n, (summary, code) in enumerate(chunks(source)):
        head = "#| export\n" if n == 0 else \
            f'#| code-fold: true\n#| code-summary: "{summary}"\n#| export\n'
        if n: cells.append(cell("markdown", f"## {summary[0].upper()}{summary[1:]}", f"{part}:m{n}"))
        cells.append(cell("code", head + code, f"{part}:c{n}"))
    cells.append(cell("code", "#| hide\nimport nbdev; nbdev.nbdev_export()", f"{part}:e"))
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "python3",
          "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    (ROOT / "nbs" / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

def chapter10():
    p = ROOT / "nbs/10_exercises.ipynb"
    nb = json.loads(p.read_text())
    cells = [c for c in nb["cells"] if "export exercise_catalogue" not in "".join(c["source"])]
    grader = [i for i, c in enumerate(cells) if c["cell_type"] == "code"
              and re.match(r"(#\|.*\n)*#\| export\n", "".join(c["source"]))]
    first = grader[0]
    for i in reversed(grader): del cells[i]
    new = []
    for n, (summary, code) in enumerate(chunks("grader.py")):
        head = "#| export\n" if n == 0 else \
            f'#| code-fold: true\n#| code-summary: "the grader: {summary}"\n#| export\n'
        new.append(cell("code", head + code, f"g{n}"))
    cells[first:first] = new
    cells = [c for c in cells if "show_doc(exercise_stub)" not in "".join(c["source"])]
    nb["cells"] = cells
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

for part in PAGES: appendix(part)
chapter10()
