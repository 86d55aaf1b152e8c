"""The website, rendered and opened in headless Chromium.

Quarto cannot be installed on the project's machines, so the suite always checks the plain
preview (`tools/build_site.py --plain`: nbdev's processed notebooks rendered by pandoc). Where
`quarto` is on PATH the same checks also run on `nbdev-docs`' real site. A deliberately broken
page shows that the checks can fail.
"""
import json, shutil, subprocess, sys
from pathlib import Path

import pytest

from conftest import NBS, ROOT, notebooks
from site_checks import check_site, chromium_path

sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(chromium_path()).exists(),
                                reason=f"no Chromium at {chromium_path()} (apt-get install chromium, or set CHROMIUM)")


def expected_pages():
    "Page file names in chapter order, named as nbdev and Quarto name them (`01_matmul` -> `matmul.html`)."
    from nbdev.config import nbpath2html
    return [nbpath2html(p.name).name for p in notebooks()]


@pytest.fixture(scope="session")
def plain_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "_docs"
    result = subprocess.run([sys.executable, "tools/build_site.py", "--plain", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"building the site failed:\n{result.stdout}\n{result.stderr}"
    assert "plain preview" in result.stdout and "quarto.org" in result.stdout
    return out


def test_plain_site_pages_pass_every_check(plain_site):
    problems, stats = check_site(plain_site, expected_pages())
    assert not problems, "\n".join(problems)
    assert stats["index.html"]["math"] > 0 and stats["index.html"]["images"] > 0, stats


@pytest.mark.skipif(shutil.which("quarto") is None, reason="Quarto is not installed here")
def test_quarto_site_pages_pass_every_check():
    subprocess.run(["nbdev-docs"], cwd=ROOT, check=True)
    problems, _ = check_site(ROOT / "_docs", expected_pages())
    assert not problems, "\n".join(problems)


BROKEN_CELLS = [
    "# A broken page\n\n> Rendered only to show that the site checks catch what is wrong.",
    "A figure that does not exist: ![missing](images/no-such-figure.png)",
    "Math that never closes: $$ \\sum_i x_i",
    "A link to a [chapter that does not exist](99_nowhere.ipynb).",
    '<script>console.error("deliberate error")</script>',
]


def test_checks_reject_a_broken_page(plain_site, tmp_path):
    "Render a broken notebook with the same pipeline and see each check fail on it."
    site = tmp_path / "site"
    shutil.copytree(plain_site, site)
    nb = dict(cells=[dict(cell_type="markdown", metadata={}, source=s) for s in BROKEN_CELLS],
              metadata={}, nbformat=4, nbformat_minor=5)
    nb_path = tmp_path / "broken.ipynb"
    nb_path.write_text(json.dumps(nb))
    pages = expected_pages() + ["broken.html"]
    nav = build_site.nav_html([(p, p) for p in pages], "broken.html")
    build_site.render_page(nb_path, site / "broken.html", {"title": "Broken"}, nav,
                           NBS / "styles.css", tmp_path)
    problems, _ = check_site(site, ["broken.html"])
    report = "\n".join(problems)
    assert "image did not load" in report and "no-such-figure.png" in report, report
    assert "unrendered math" in report, report
    assert "link to a missing page: nowhere.html" in report, report
    assert "console error: deliberate error" in report, report
    # and the chapter list check: the real pages do not list broken.html
    problems, _ = check_site(site, ["index.html", "broken.html"])
    assert any("chapter list is" in p for p in problems), problems
