"""The website, rendered once and opened in headless Chromium.

Quarto cannot be installed on the project's machines, so the suite always checks the plain
preview (`tools/build_site.py --plain`: nbdev's processed notebooks rendered by pandoc). Where
`quarto` is on PATH the same checks also run on `nbdev-docs`' real site. Two pages that are not
in the book are rendered by the same pipeline next to the real ones: one that uses every construct
the chapters use (echo false, folded code, callouts, long lines), which must pass every check, and
a deliberately broken one, which shows that each check can fail.
"""
import json, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import pytest

import helpers
from helpers import NBS, ROOT
from helpers.site_checks import check_site, chromium_path, expectations

sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(chromium_path()).exists(),
                                reason=f"no Chromium at {chromium_path()} (apt-get install "
                                       "chromium, or set CHROMIUM)")


def book_notebooks():
    "Notebook paths relative to nbs/, in the order the sidebar lists them."
    return build_site.chapter_order(NBS)


def expected_pages():
    """Page paths in sidebar order, named as nbdev and Quarto name them (`01_matmul` ->
    `matmul.html`)."""
    from nbdev.config import nbpath2html
    return [nbpath2html(name).as_posix() for name in book_notebooks()]


# the one build of the plain preview in this session: its process, folder and start time
_build = {}


def _start_build():
    if not _build:
        folder = Path(tempfile.mkdtemp(prefix="plain_site_"))
        logs = [open(folder / name, "w+") for name in ("stdout.txt",
                                                       "stderr.txt")]  # never a full pipe
        process = subprocess.Popen([sys.executable, "tools/build_site.py", "--plain", "--out",
                                    str(folder / "_docs")],
                                   cwd=ROOT, stdout=logs[0], stderr=logs[1], text=True)
        _build.update(process=process, out=folder / "_docs", logs=logs, start=time.perf_counter())
    return _build


def start_early(items):
    "Called by helpers.py once the tests are collected: build the site now, in the background."
    if Path(chromium_path()).exists() and any("plain_site" in item.fixturenames for item in items):
        _start_build()


@pytest.fixture(scope="session")
def plain_site():
    "The plain preview of the whole book, built once per session (started early by `start_early`)."
    build = _start_build()
    build["process"].wait()
    stdout, stderr = (log.seek(0) or log.read() for log in build["logs"])
    helpers.background_time.setdefault("building the plain preview (tools/build_site.py --plain)",
                                        time.perf_counter() - build["start"])
    assert build["process"].returncode == 0, f"building the site failed:\n{stdout}\n{stderr}"
    assert "plain preview" in stdout and "quarto.org" in stdout
    yield build["out"]
    for log in build["logs"]: log.close()
    shutil.rmtree(build["out"].parent, ignore_errors=True)


def test_plain_site_pages_pass_every_check(plain_site):
    pages = expected_pages()
    expect = {page: expectations(NBS / name) for page, name in zip(pages, book_notebooks())}
    problems, stats = check_site(plain_site, pages, expect)
    assert not problems, "\n".join(problems)
    assert stats["index.html"]["math"] > 0 and stats["index.html"]["images"] > 0, stats


@pytest.mark.skipif(shutil.which("quarto") is None, reason="Quarto is not installed here")
def test_quarto_site_pages_pass_every_check():
    subprocess.run(["nbdev-docs"], cwd=ROOT, check=True)
    pages = expected_pages()
    expect = {page: expectations(NBS / name) for page, name in zip(pages, book_notebooks())}
    problems, _ = check_site(ROOT / "_docs", pages, expect)
    assert not problems, "\n".join(problems)


def _md(source): return dict(cell_type="markdown", metadata={}, source=source)


def _code(source, *outputs):
    return dict(cell_type="code", metadata={}, execution_count=None, source=source,
                outputs=list(outputs))


def _markdown_out(text):
    return dict(output_type="display_data", metadata={},
                data={"text/markdown": text,
                      "text/plain": "<IPython.core.display.Markdown object>"})


def _stream(text): return dict(output_type="stream", name="stdout", text=text)


LONG_LINE = "result = " + " + ".join(f"weights_{i} @ inputs_{i}"
                                     for i in range(12)) + "  # " + "x" * 120

# Every construct the chapters use, with what the page must show.
CONSTRUCT_CELLS = [
    _md("# Every construct\n\n> Rendered only to show that the preview renders what the chapters "
        "use."),
    _code('#| echo: false\ndisplay(Markdown(f"The measured sentence, **{2 + 2}** words long."))',
          _markdown_out("The measured sentence, **4** words long.")),
    _code('#| code-fold: true\n#| code-summary: "the sum agrees with a loop, for every size"\nfor '
          'n in range(5): assert sum(range(n)) == n * (n - 1) // 2\nprint("agreed")',
          _stream("agreed\n")),
    _code('#| code-fold: true\n#| code-summary: "a long line wraps inside its fold"\n' + LONG_LINE,
          _stream("y" * 300 + "\n")),
    _code('#| code-fold: show\n#| code-summary: "Exported source"\ndef shown(x): return x'),
    _code(LONG_LINE + "\nprint(" + repr("z" * 250) + ")", _stream("z" * 250 + "\n")),
    _md('Before the asides.\n\n::: {.callout-note collapse="true"}\n## How the numbers were '
        'measured\n\nOn one thread, best of five.\n:::\n\nBetween them.'),
    _md('::: {.callout-tip title="A tip with a *title* attribute"}\nRead chapter 1 first.\n:::'),
    _md("::: {.callout-warning}\nFloat32 overflows near $10^{38}$.\n:::"),
    _md("| a wide table |" + " column |" * 40 + "\n|---|" + "---|" * 40 + "\n| 1 |" + " 2 |" * 40),
]

BROKEN_CELLS = [
    _md("# A broken page\n\n> Rendered only to show that the site checks catch what is wrong."),
    _md("A figure that does not exist: ![missing](images/no-such-figure.png)"),
    _md("Math that never closes: $$ \\sum_i x_i"),
    _md("A link to a [chapter that does not exist](99_nowhere.ipynb)."),
    _md('<script>console.error("deliberate error")</script>'),
    _code('display(Markdown(f"A sentence whose code is left in view: {1 + 1}."))',
          _markdown_out("A sentence whose code is left in view: 2.")),
    _md("A callout whose fence has no blank line before it, so it stays text:\n::: "
        "{.callout-warning}\nCareful.\n:::"),
    _code('#| code-fold: true\n#| code-summary: "a fold that a script opens on load"\nx = 1'),
    _code('#| code-fold: true\n#| code-summary: "a fold whose summary ignores clicks"\ny = 2'),
    _md("<script>const folds = document.querySelectorAll('details.code-fold'); folds[0].open = "
        "true; folds[1].querySelector('summary').addEventListener('click', e => "
        "e.preventDefault());</script>"),
    _md('<div style="width: 3000px">A block wider than any window.</div>'),
]


def _notebook(cells): return dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)


@pytest.fixture(scope="module")
def test_pages(plain_site, tmp_path_factory):
    """The two test pages, rendered next to (links to) the real site's pages, checked in one browser
    run."""
    tmp = tmp_path_factory.mktemp("test_pages")
    site = tmp / "site"
    site.mkdir()
    for item in plain_site.iterdir(): (site / item.name).symlink_to(item)
    pages = expected_pages()
    titles = [(p, p) for p in pages]
    hrefs, expect = {}, {}
    for stem, cells in (("constructs", CONSTRUCT_CELLS), ("broken", BROKEN_CELLS)):
        nb_path = tmp / f"{stem}.ipynb"
        nb_path.write_text(json.dumps(_notebook(cells)))
        hrefs[stem] = build_site.render_notebook(nb_path, site, titles, NBS / "styles.css", tmp)
        expect[hrefs[stem]] = expectations(nb_path)
    # the constructs page lists the book and itself; the broken page is checked against the book
    # alone
    navs = {hrefs["constructs"]: pages + [hrefs["constructs"]], hrefs["broken"]: pages}
    problems, stats = check_site(site, list(hrefs.values()), expect, nav=navs)
    return hrefs, problems, stats, (site / hrefs["constructs"]).read_text()


def test_preview_renders_every_construct(test_pages):
    hrefs, problems, stats, html = test_pages
    page = hrefs["constructs"]
    mine = [p for p in problems if p.startswith(f"{page}:")]
    assert not mine, "\n".join(mine)
    assert stats[page]["folds_closed"] == 2 and stats[page]["folds_open"] == 1, stats[page]
    assert stats[page]["callouts"] == ["How the numbers were measured",
                                       "A tip with a title attribute", "Warning"], stats[page]
    assert "the sum agrees with a loop, for every size" in html and "The measured sentence" in html
    assert "Markdown(" not in html, "the echo: false cell's code reached the page"
    assert html.count('<details class="callout') == 1, \
        'only the collapse="true" callout is collapsible'


def test_checks_reject_a_broken_page(test_pages):
    "Each check fails on the broken page, rendered with the same pipeline."
    hrefs, problems, stats, _ = test_pages
    page = hrefs["broken"]
    report = "\n".join(p for p in problems if p.startswith(f"{page}:"))
    for expected in ("image did not load", "no-such-figure.png", "unrendered math",
                     "link to a missing page: nowhere.html",
                     "console error: deliberate error",
                     "visible code block formats prose with Markdown(",
                     "literal callout fence", "0 callouts rendered as boxes, expected 1",
                     "1 folded code blocks closed on load, expected 2", "does not open on click",
                     "scrolls sideways", "chapter list is"):
        assert expected in report, f"{expected!r} not reported:\n{report}"
