"""What the site tests check on every page, in a real (headless) Chromium.

`check_site` opens each page and returns a list of problems, empty when the site is good:
console errors, images that did not load, TeX left unrendered, internal links that go nowhere,
and a chapter list that is missing pages or out of order.
"""
import os, re
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# Text the reader sees, without code, rendered math, scripts and styles.
_VISIBLE_TEXT_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, math, mjx-container, .katex, script, style').forEach(e => e.remove());
  return body.innerText;
}"""
_RAW_TEX = re.compile(r"\$\$|\\\[|\\begin\{|(?<![\w$])\$[^\s$][^$\n]*\$(?![\w$])")

# The chapter list: our preview's nav, or Quarto's sidebar.
_NAV_JS = """() => Array.from(document.querySelectorAll(
    'nav#book-nav a[href$=".html"], #quarto-sidebar a.sidebar-link[href$=".html"]'))
  .map(a => a.getAttribute('href').split('/').pop())"""


def chromium_path():
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def check_page(browser, page_path, site_dir, expected_nav):
    "Open one page; return (problems, stats) where stats counts its math elements and images."
    page_path, site_dir = Path(page_path), Path(site_dir)
    name, problems = page_path.name, []
    page = browser.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"{name}: console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"{name}: page error: {e}"))
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.wait_for_timeout(100)

    images = page.evaluate("() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    problems += [f"{name}: image did not load: {src[:80]}" for src, ok in images if not ok]

    math = page.evaluate("() => document.querySelectorAll('math, mjx-container, .katex').length")
    for raw in _RAW_TEX.findall(page.evaluate(_VISIBLE_TEXT_JS)):
        problems.append(f"{name}: unrendered math in the text: {raw[:60]!r}")

    for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
        url = urlparse(href)
        if url.scheme != "file": continue
        target = Path(unquote(url.path))
        if not target.exists():
            problems.append(f"{name}: link to a missing page: {target.name}")
            continue
        if url.fragment and f'id="{url.fragment}"' not in target.read_text(errors="replace"):
            problems.append(f"{name}: link to a missing anchor: {target.name}#{url.fragment}")

    nav = page.evaluate(_NAV_JS)
    if nav != expected_nav:
        problems.append(f"{name}: chapter list is {nav}, expected {expected_nav}")
    page.close()
    return problems, dict(math=math, images=len(images))


def check_site(site_dir, expected_pages):
    "Check every page in `expected_pages` (file names, in chapter order) under `site_dir`."
    from playwright.sync_api import sync_playwright
    site_dir, problems, stats = Path(site_dir), [], {}
    missing = [p for p in expected_pages if not (site_dir / p).exists()]
    problems += [f"page not built: {p}" for p in missing]
    with sync_playwright() as p:
        browser = launch(p)
        for name in expected_pages:
            if name in missing: continue
            page_problems, stats[name] = check_page(browser, site_dir / name, site_dir, expected_pages)
            problems += page_problems
        browser.close()
    return problems, stats
