"""Build the book's website into `_docs/`.

With Quarto on PATH this runs nbdev's own `nbdev-docs`: the real site. Without Quarto it builds a
plain preview of the same pages: nbdev processes the notebooks exactly as it would for Quarto
(into `_proc/`), pandoc renders each processed notebook to one self-contained HTML page (math as
MathML, figures embedded), and this script only puts the pages in chapter order (the list in
`nbs/sidebar.yml`, folders such as `exercises/` kept) and adds that list to the top of every page.

What Quarto does with the chapters' cell options the preview does too (`prepare_notebook` and the
pandoc filter `site_links.lua`): `#| echo: false` shows only the output, `#| output: asis` puts
the output on the page as Markdown, `#| code-fold: true` with `#| code-summary: "..."` puts the code
in a `<details>` that starts closed (nbdev's `code-fold: show` on exported code: open), and Quarto
callouts (`::: {.callout-note collapse="true"}` ... `:::`, titled by `title="..."` or a heading on
their first line) become boxes, the collapsible ones `<details>`. Long code lines wrap
(`preview.css`; Quarto: `code-overflow: wrap` in `nbs/_quarto.yml`).

Run from the repository root, after `pip install -e ".[dev]"`:

    python tools/build_site.py            # Quarto if installed, else the plain preview
    python tools/build_site.py --plain    # always the plain preview
    python tools/build_site.py --out DIR  # write the pages somewhere other than _docs/
"""
import argparse, html, json, os, posixpath, shutil, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LINK_FILTER = Path(__file__).with_name("site_links.lua")
PREVIEW_CSS = Path(__file__).with_name("preview.css")
QUARTO_HELP = "https://quarto.org/docs/get-started/"
# How pandoc reads a notebook: Markdown in HTML blocks, and fenced divs (`::: {.callout-note}`) as
# Quarto reads them.
PANDOC_FROM = "ipynb+markdown_in_html_blocks+fenced_divs+link_attributes"


def chapter_order(nbs_path):
    "Notebook names (relative to `nbs_path`) in the order `sidebar.yml` lists them."
    def walk(items):
        for item in items:
            if isinstance(item, str): yield item
            elif isinstance(item, dict):
                if "href" in item: yield item["href"]
                yield from walk(item.get("contents", []))
    sidebar = yaml.safe_load((Path(nbs_path) / "sidebar.yml").read_text())
    return list(walk(sidebar["website"]["sidebar"]["contents"]))


def _directives(source):
    """Split a code cell's source into its `#| key: value` directives and the remaining code.

    Values are read as YAML, as Quarto reads them, then given back as text: `true`, `false`,
    `show`, or the unquoted string (`#| code-summary: "what it proves"` -> `what it proves`)."""
    directives, lines = {}, source.splitlines()
    while lines and lines[0].startswith("#|"):
        key, _, value = lines.pop(0)[2:].partition(":")
        try: value = yaml.safe_load(value) if value.strip() else True
        except yaml.YAMLError: value = value.strip()
        directives[key.strip()] = str(value).lower() if isinstance(value, bool) else str(value)
    return directives, "\n".join(lines)


def _as_text(value): return "".join(value) if isinstance(value, list) else value


def _markdown_of(output):
    """The markdown for an output pandoc would drop (text/markdown, or LaTeX without an image), else
    None."""
    data = output.get("data", {})
    if any(k.startswith("image/") or k == "text/html" for k in data): return None
    if "text/markdown" in data: return _as_text(data["text/markdown"])
    if "text/latex" in data:
        tex = _as_text(data["text/latex"]).strip()
        return tex if tex.startswith("$") else f"$${tex}$$"
    return None


def _fold(cell, directives):
    "Quarto's code-fold (`true`: closed, `show`: open): the filter makes a <details>."
    fold = directives.get("code-fold", "false")
    if cell["source"] and fold in ("true", "show"):
        cell["metadata"]["fold"] = "open" if fold == "show" else "closed"
        # prefixed so pandoc never reads the text as JSON ("true", "123") when it makes it an
        # attribute
        cell["metadata"]["fold_summary"] = "s:" + directives.get("code-summary", "Code")


def _code_cell(cell, source, number):
    """The cells that code cell `cell` (its source text `source`) becomes on the page, with its
    directives applied: none if it is left out; `number` is its execution count if it has none."""
    directives, source = _directives(source)
    if directives.get("include") == "false" or "hide" in directives: return []
    if directives.get("output") == "false": cell["outputs"] = []
    if directives.get("output") == "asis":  # the output is markdown for the page
        text = "".join(_as_text(o.get("text") or o.get("data", {}).get("text/markdown", ""))
                       for o in cell["outputs"])
        return [dict(cell_type="markdown", metadata={}, source=text)]
    cell["source"] = "" if directives.get("echo") == "false" else source
    _fold(cell, directives)
    cell["execution_count"] = cell.get("execution_count") or number
    for out in cell["outputs"]:
        if "execution_count" in out: out["execution_count"] = cell["execution_count"]
    # pandoc drops text/markdown and text/latex outputs (e.g. show_doc, SymPy) from HTML, where
    # Quarto shows them: put them on the page as markdown, TeX math included.
    as_markdown = [(o, _markdown_of(o)) for o in cell["outputs"]]
    cell["outputs"] = [o for o, md in as_markdown if md is None]
    return [cell] + [dict(cell_type="markdown", metadata={}, source=md)
                     for _, md in as_markdown if md is not None]


def prepare_notebook(nb):
    """Apply what Quarto would do to a processed notebook, so pandoc can render it.

    Returns `(front_matter, notebook)`: the YAML front matter nbdev put in the first raw cell, and
    the notebook with Quarto's cell directives applied and pandoc's format demands met."""
    front, cells = {}, []
    for cell in nb["cells"]:
        cell.pop("has_sd", None)  # nbdev's own key, not in the notebook format
        source = _as_text(cell["source"])
        if cell["cell_type"] == "raw" and source.lstrip().startswith("---"):
            front.update(yaml.safe_load(source.strip().strip("-")) or {})
        elif cell["cell_type"] == "code": cells += _code_cell(cell, source, len(cells) + 1)
        else: cells.append(cell)
    nb["cells"] = cells
    return front, nb


def nav_html(pages, current):
    """The chapter list put at the top of each page: `pages` is a list of (page path, title), paths
    relative to the site's root (`matmul.html`, `exercises/matmul.html`); links are relative to
    `current`."""
    here = posixpath.dirname(current)
    def item(href, title):
        mark = ' aria-current="page"' if href == current else ""
        link = posixpath.relpath(href, here or ".")
        return f'<li><a href="{link}"{mark}>{html.escape(title)}</a></li>'
    items = "".join(item(href, title) for href, title in pages)
    return (f'<nav id="book-nav" aria-label="Chapters"><ul>{items}</ul>'
            f'<p class="preview-note">Plain preview rendered with pandoc. '
            f'The full site needs Quarto: <a href="{QUARTO_HELP}">{QUARTO_HELP}</a>.</p></nav>')


def pandoc_path():
    import pypandoc
    return pypandoc.get_pandoc_path()


def render_page(nb_path, out_html, front, nav, css, resource_path):
    "Render one prepared notebook to a self-contained HTML page with pandoc."
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "nav.html"
        before.write_text(nav)
        meta = {"title": front.get("title", Path(nb_path).stem), "lang": "en"}
        if front.get("description"): meta["subtitle"] = front["description"]
        meta_file = Path(tmp) / "meta.yaml"
        meta_file.write_text(yaml.safe_dump(meta))
        Path(out_html).parent.mkdir(parents=True, exist_ok=True)
        cmd = [pandoc_path(), str(nb_path), "--from", PANDOC_FROM, "--to", "html5", "--standalone",
               "--embed-resources", "--mathml", "--css", str(css), "--css", str(PREVIEW_CSS),
               "--metadata-file", str(meta_file),
               "--include-before-body", str(before), "--lua-filter", str(LINK_FILTER),
               "--resource-path", str(resource_path), "--output", str(out_html)]
        result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode: raise RuntimeError(f"pandoc failed on {nb_path}:\n{result.stderr}")
    return result.stderr  # pandoc's warnings, e.g. a resource it could not find


def page_path(name, front):
    """Where the page of notebook `name` (relative to nbs/) goes, relative to the site's root, as
    Quarto puts it."""
    folder = posixpath.dirname(Path(name).as_posix())
    return posixpath.join(folder, front.get("output-file") or Path(name).with_suffix(".html").name)


def process_notebook(src, dst):
    """Process one notebook as `nbdev-proc-nbs` does for Quarto (nbdev's own processors), into
    `dst`."""
    from fastcore.xtras import working_directory
    from nbdev.processors import FilterDefaults
    from nbdev.serve_drv import main as process
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with working_directory(ROOT):
        process((Path(src).resolve(), Path(dst).resolve(), FilterDefaults))


def render_notebook(nb_path, out_dir, pages, css, tmp_dir):
    """Process, prepare and render one notebook that is not in the book (a test page) into
    `out_dir`, with `pages` (page path, title) as its chapter list; returns the page's path relative
    to `out_dir`."""
    processed = Path(tmp_dir) / f"processed_{Path(nb_path).name}"
    read_nbdev_config_once()
    process_notebook(nb_path, processed)
    front, nb = prepare_notebook(json.loads(processed.read_text()))
    href = page_path(Path(nb_path).name, front)
    prepared = Path(tmp_dir) / f"prepared_{Path(nb_path).name}"
    prepared.write_text(json.dumps(nb))
    nav = nav_html(pages + [(href, front.get("title", href))], href)
    render_page(prepared, Path(out_dir) / href, front, nav, css, Path(nb_path).parent)
    return href


def read_nbdev_config_once():
    """nbdev reads and parses pyproject.toml twice for every cell it processes (its `get_config`
    is called per cell), about a fifth of this build's time; the file does not change while the site
    builds, so parse it once per version of the file (nbdev only reads the dict it gets)."""
    import nbdev.config
    if getattr(nbdev.config._load_toml, "cached", False): return
    load, parsed = nbdev.config._load_toml, {}
    def load_toml(path):
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in parsed: parsed[key] = load(path)
        return parsed[key]
    load_toml.cached = True
    nbdev.config._load_toml = load_toml


def build_plain(out_dir, nbs_path=None, workers=None):
    "Build the plain preview into `out_dir`; returns the list of pages written."
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    read_nbdev_config_once()
    cfg = get_config(ROOT)
    nbs_path = Path(nbs_path or cfg.nbs_path)
    refresh_quarto_yml()
    proc_path = proc_nbs(nbs_path, n_workers=0)  # what Quarto would read, in _proc/
    out_dir = Path(out_dir)
    if out_dir.exists(): shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    prepared = []
    for name in chapter_order(nbs_path):
        front, nb = prepare_notebook(json.loads((proc_path / name).read_text()))
        prepared.append((name, page_path(name, front), front, nb))
    pages = [(href, front.get("title", href)) for _, href, front, _ in prepared]
    threads = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(threads) as pool:
        # pandoc runs as its own process, so threads render pages side by side
        def render(item):
            name, href, front, nb = item
            nb_file = Path(tmp) / name
            nb_file.parent.mkdir(parents=True, exist_ok=True)
            nb_file.write_text(json.dumps(nb))
            return render_page(nb_file, out_dir / href, front, nav_html(pages, href),
                               nbs_path / "styles.css", proc_path / Path(name).parent)
        for (name, href, _, _), warnings in zip(prepared, pool.map(render, prepared)):
            if warnings.strip(): print(f"pandoc, {name}:\n{warnings}", file=sys.stderr)
            print(f"  {name} -> {out_dir / href}")
    return [out_dir / href for href, _ in pages]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true",
                        help="build the pandoc preview even if Quarto is installed")
    parser.add_argument("--out", default=None,
                        help="output folder (default: nbdev's doc_path, _docs/)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if shutil.which("quarto") and not args.plain:
        subprocess.run(["nbdev-docs"], check=True)
        if args.out: shutil.copytree("_docs", args.out, dirs_exist_ok=True)
        print(f"Built the site with Quarto in {args.out or '_docs'}/")
        return
    print("Quarto is not installed, so this builds the plain preview with pandoc: the same pages,\n"
          "without Quarto's theme, search or sidebar. For the full site install Quarto "
          f"({QUARTO_HELP})\nand run this command again.")
    out = Path(args.out or "_docs")
    pages = build_plain(out)
    print(f"Built {len(pages)} pages in {out}/; open {out / 'index.html'} in a browser.")


if __name__ == "__main__":
    main()
