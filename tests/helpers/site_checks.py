"""What the site tests check on every page, in a real (headless) Chromium, 1280 px wide.

`check_site` opens each page and returns a list of problems, empty when the site is good:
console errors, images that did not load, TeX left unrendered, internal links that go nowhere,
a chapter list that is missing pages or out of order, and the reader's view: no visible code
block that formats prose with `Markdown(` (such cells carry `#| echo: false`), every folded
block (`#| code-fold: true`) closed on load and opening on click, every Quarto callout rendered
as a box (never as literal `:::` text), and no page wider than the window. Pages are checked two
at a time.
"""
import asyncio, json, os, re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}

# Text the reader sees, without code, rendered math, scripts and styles.
_VISIBLE_TEXT_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, math, mjx-container, .katex, script, style')
      .forEach(e => e.remove());
  return body.innerText;
}"""
_RAW_TEX = re.compile(r"\$\$|\\\[|\\begin\{|(?<![\w$])\$[^\s$][^$\n]*\$(?![\w$])")
_FENCE = re.compile(r"^\s*:::.*$", re.M)

# The chapter list: our preview's nav, or Quarto's sidebar (absolute URLs, in page order).
_CALLOUT = r"^:::+\s*(\{[^}\n]*\.|)callout-(note|tip|warning|important|caution)\b"

_NAV_JS = """() => Array.from(document.querySelectorAll(
    'nav#book-nav a[href$=".html"], #quarto-sidebar a.sidebar-link[href$=".html"]'))
  .map(a => a.href)"""

# Code blocks in view on load (not in a closed <details>, not hidden) that contain `Markdown(`:
# the source of a cell that prints prose, which should show only its output.
_VISIBLE_MARKDOWN_CODE_JS = """() => Array.from(document.querySelectorAll('pre'))
  .filter(p => !p.closest('.output, .cell-output') && p.checkVisibility()
               && p.textContent.includes('Markdown('))
  .map(p => p.textContent.trim().split('\\n')[0].slice(0, 70))"""

# Folded code: Quarto and the preview both put it in `details.code-fold`.
_FOLDS_JS = """() => Array.from(document.querySelectorAll('details.code-fold')).map(d => d.open)"""

# Open every closed fold by clicking its summary (the first one is clicked by the browser itself,
# see check_page); report those that stay closed or whose code stays out of view.
_OPEN_FOLDS_JS = """() => {
  const stuck = [];
  document.querySelectorAll('details.code-fold:not([open])').forEach(d => {
    d.querySelector('summary').click();
    const code = d.querySelector('pre');
    if (!d.open || !code || !code.checkVisibility())
      stuck.push(d.querySelector('summary').textContent.trim().slice(0, 70));
  });
  return stuck;
}"""

# Callouts: each must be a visible box (a border or a background of its own) with a title.
_CALLOUTS_JS = """() => Array.from(document.querySelectorAll('.callout')).map(c => {
  const s = getComputedStyle(c);
  const box = parseFloat(s.borderLeftWidth) > 0 || parseFloat(s.borderTopWidth) > 0
              || s.backgroundColor !== 'rgba(0, 0, 0, 0)';
  const title = c.querySelector('.callout-title, .callout-header, summary');
  return {box: box && c.checkVisibility(), title: title ? title.textContent.trim() : ''};
})"""

# Page width, with every <details> open so that folded code counts too; names the widest element.
_WIDTH_JS = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const root = document.documentElement, limit = root.clientWidth;
  let widest = null;
  if (root.scrollWidth > limit) {
    for (const e of document.body.querySelectorAll('*')) {
      const r = e.getBoundingClientRect();
      if (r.right > limit + 1 && (!widest || r.right > widest.right))
        widest = {right: r.right,
                  what: e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ': '
                        + (e.textContent || '').trim().slice(0, 50)};
    }
  }
  return {scroll: root.scrollWidth, client: limit, widest: widest && widest.what};
}"""


def chromium_path():
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _directives(source):
    "A code cell's leading `#| key: value` lines, the values read as YAML and lower-cased text."
    found = {}
    for line in source.splitlines():
        if not line.startswith("#|"): break
        key, _, value = line[2:].partition(":")
        try: value = yaml.safe_load(value) if value.strip() else True
        except yaml.YAMLError: value = value.strip()
        found[(key.split() or [""])[0]] = str(value).lower()  # `#| export core` -> export
    return found


def expectations(nb_path):
    """What the page of notebook `nb_path` must show: `folds`, the code cells folded closed
    (`#| code-fold: true` on a cell whose code nbdev and Quarto show: not `echo: false`, not
    exported with `export`, not hidden, not a `show_doc` call), and `callouts`, the callout divs in
    its markdown."""
    folds = callouts = 0
    for cell in json.loads(Path(nb_path).read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            callouts += len(re.findall(_CALLOUT, source, re.M))
        elif cell["cell_type"] == "code":
            d = _directives(source)
            shown = (d.get("echo") != "false" and d.get("include") != "false"
                     and not set(d) & _NBDEV_HIDES
                     and not re.search(r"^show_doc", source, re.M))
            folds += shown and d.get("code-fold") == "true"
    return dict(folds=folds, callouts=callouts)


# nbdev drops these cells' code from the page
_NBDEV_HIDES = {"default_exp", "hide", "exporti", "export"}


@lru_cache(maxsize=None)
def _anchors(path):
    "The ids in one built page (read once per run, however many links point into it)."
    return frozenset(re.findall(r'\bid="([^"]+)"', Path(path).read_text(errors="replace")))


async def check_page(page, page_path, site_dir, expected_nav, expect=None):
    """Open one page in the browser tab `page` (see `_tab`); return (problems, stats).

    `expected_nav`: page paths relative to `site_dir`, in order; `expect`: what `expectations` says
    of its notebook, or None to skip those two counts. stats: math elements, images, folds
    (closed on load, open on load), callouts."""
    page_path, site_dir = Path(page_path), Path(site_dir).resolve()
    name = (page_path.relative_to(site_dir) if page_path.is_absolute() else page_path).as_posix()
    problems = []
    # the tab's console and page errors now belong to this page
    page.name, page.errors = name, problems
    await page.goto((site_dir / name).as_uri(), wait_until="load")
    await page.wait_for_timeout(100)

    images = await page.evaluate("() => Array.from(document.images).map(i => "
                                 "[i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    problems += [f"{name}: image did not load: {src[:80]}" for src, ok in images if not ok]

    math = await page.evaluate(
        "() => document.querySelectorAll('math, mjx-container, .katex').length")
    text = await page.evaluate(_VISIBLE_TEXT_JS)
    for raw in _RAW_TEX.findall(text):
        problems.append(f"{name}: unrendered math in the text: {raw[:60]!r}")
    for fence in _FENCE.findall(text):
        problems.append(f"{name}: literal callout fence in the text (a callout not rendered): "
                        f"{fence.strip()[:60]!r}")

    links = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
    for href in await page.evaluate(links):
        url = urlparse(href)
        if url.scheme != "file": continue
        target = Path(unquote(url.path))
        if not target.exists():
            problems.append(f"{name}: link to a missing page: {target.name}")
            continue
        if url.fragment and target.is_file() and unquote(url.fragment) not in _anchors(target):
            problems.append(f"{name}: link to a missing anchor: {target.name}#{url.fragment}")

    nav = [_relative(href, site_dir) for href in await page.evaluate(_NAV_JS)]
    if nav != expected_nav:
        problems.append(f"{name}: chapter list is {nav}, expected {expected_nav}")

    # The reader's view, as the page loads: prose-printing code hidden, folds closed, callouts
    # boxed.
    for line in await page.evaluate(_VISIBLE_MARKDOWN_CODE_JS):
        problems.append(f"{name}: visible code block formats prose with Markdown( (give the cell "
                        f"`#| echo: false`): {line!r}")
    folds = await page.evaluate(_FOLDS_JS)
    closed = folds.count(False)
    callouts = await page.evaluate(_CALLOUTS_JS)
    problems += [f"{name}: callout {c['title']!r} is not shown as a box" for c in callouts
                 if not c["box"]]
    if expect is not None:
        if closed != expect["folds"]:
            problems.append(f"{name}: {closed} folded code blocks closed on load, expected "
                            f"{expect['folds']} (cells with `#| code-fold: true`)")
        if len(callouts) != expect["callouts"]:
            problems.append(f"{name}: {len(callouts)} callouts rendered as boxes, expected "
                            f"{expect['callouts']}")
    if closed:  # a real click on the first fold, then a scripted click on each of the others
        await page.click("details.code-fold:not([open]) > summary")
        opened = "() => document.querySelector('details.code-fold[open] pre')?.checkVisibility()"
        if not await page.evaluate(opened + " ?? false"):
            problems.append(f"{name}: clicking a folded block's summary did not show its code")
    problems += [f"{name}: folded block {s!r} does not open on click"
                 for s in await page.evaluate(_OPEN_FOLDS_JS)]

    width = await page.evaluate(_WIDTH_JS)
    if width["scroll"] > width["client"]:
        problems.append(f"{name}: page is {width['scroll']} px wide in a {width['client']} px "
                        f"window (it scrolls sideways); widest: {width['widest']}")
    page.errors = []   # errors after this page's checks count for no page
    return problems, dict(math=math, images=len(images), folds_closed=closed,
                          folds_open=folds.count(True),
                          callouts=[c["title"] for c in callouts])


def _relative(href, site_dir):
    url = urlparse(href)
    if url.scheme != "file": return href
    path = Path(unquote(url.path))
    try: return path.relative_to(site_dir).as_posix()
    except ValueError: return path.as_posix()


async def _tab(browser):
    """A browser tab that `check_page` reuses from page to page: a new tab per page would start
    a new renderer process each time, which costs more CPU than checking the page does."""
    page = await browser.new_page(viewport=VIEWPORT)
    page.errors, page.name = [], None   # check_page points these at the page it is checking
    page.on("console",
            lambda m: m.type == "error"
            and page.errors.append(f"{page.name}: console error: {m.text}"))
    page.on("pageerror", lambda e: page.errors.append(f"{page.name}: page error: {e}"))
    return page


async def _check_all(site_dir, pages, navs, expect, at_once):
    from playwright.async_api import async_playwright
    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        queue = list(pages)
        async def worker():
            tab = await _tab(browser)
            while queue:
                name = queue.pop(0)
                results[name] = await check_page(tab, Path(site_dir) / name, site_dir, navs[name],
                                                 expect.get(name))
            await tab.close()
        await asyncio.gather(*(worker() for _ in range(min(at_once, len(pages)))))
        await browser.close()
    return results


def check_site(site_dir, expected_pages, expect=None, nav=None, at_once=2):
    """Check every page in `expected_pages` (paths relative to `site_dir`) under `site_dir`.

    `nav`: the chapter list every page must show (default: `expected_pages`, in that order), or a
    dict {page: its chapter list}; `expect`: {page: expectations(...)} for the pages whose folds and
    callouts are counted."""
    site_dir = Path(site_dir).resolve()
    missing = [p for p in expected_pages if not (site_dir / p).exists()]
    problems, stats = [f"page not built: {p}" for p in missing], {}
    pages = [p for p in expected_pages if p not in missing]
    navs = nav if isinstance(nav, dict) else {p: list(nav or expected_pages) for p in pages}
    results = asyncio.run(_check_all(site_dir, pages, navs, expect or {}, at_once))
    for name in pages:  # in the order asked for, whatever order they finished in
        problems += results[name][0]
        stats[name] = results[name][1]
    return problems, stats
