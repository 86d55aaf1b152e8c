"""The explorable figures (`foundations.figures`), used in headless Chromium on the built preview.

The preview is the one `test_site.py` builds (its `plain_site` fixture, started early in the
background); one browser and one tab visit the pages that hold figures. For each figure: it is
there, its controls (used from the keyboard or by clicking) change it, the numbers it shows are
the ones Python computes, no console error is logged, it stays within a 390 px wide window and
under 200 KB, and with scripts off it still shows a still frame.
"""
import itertools, json, math
from pathlib import Path

import pytest
import torch

from helpers.site_checks import CHROMIUM_ARGS, VIEWPORT, chromium_path
from test_site import plain_site, start_early  # noqa: F401  (the shared site build, started early)

pytestmark = pytest.mark.skipif(not Path(chromium_path()).exists(),
                                reason=f"no Chromium at {chromium_path()}")

FIGURE_PAGES = {"broadcasting.html": "bcast", "init.html": "depth", "training.html": "rate",
                "figures.html": "backward"}   # at least these; `_pages_with` finds every one


def _pages_with(site, kind=""):
    "The built pages that hold a figure (of `kind`), found in their HTML without a browser."
    mark = f'data-figure="{kind}' if kind else 'class="fnd-fig"'
    return sorted(page.relative_to(site).as_posix() for page in site.rglob("*.html")
                  if mark in page.read_text())


@pytest.fixture(scope="module")
def browser():
    "One headless Chromium for the module, and the console errors its pages log."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def tab(browser):
    "A tab reused from page to page (see site_checks._tab); `tab.errors` collects console errors."
    page = browser.new_page(viewport=VIEWPORT)
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


def _open(tab, site, name, kind):
    "Open page `name` and return its figure of `kind` (the first), after its script has run."
    tab.goto((site / name).as_uri(), wait_until="load")
    figure = tab.locator(f'.fnd-fig[data-figure="{kind}"]').first
    assert figure.get_attribute("data-live") == "1", f"{name}: the {kind} figure's script never ran"
    return figure


def _text(figure, key): return figure.locator(f'[data-k="{key}"]').first.text_content()


def _shapes():
    "Pairs of shapes, ranks 0 to 4, sizes 0, 1, 2, 3 and 5: 441 pairs."
    sizes = (0, 1, 2, 3, 5)
    shapes = [()] + [s for rank in (1, 2) for s in itertools.product(sizes, repeat=rank)]
    shapes += [(2, 1, 3), (1, 3, 1), (5, 0, 1), (1, 1, 1, 3), (4, 1, 2, 3), (3, 1, 1, 1)]
    pairs = list(itertools.product(shapes[:16], repeat=2))
    pairs += [(a, b) for a in shapes for b in shapes[-12:]]
    return [(list(a), list(b)) for a, b in pairs[:441]]


def test_broadcasting_rule_agrees_with_torch(plain_site, tab):
    figure = _open(tab, plain_site, "broadcasting.html", "bcast")
    pairs = _shapes()
    answers = figure.evaluate("(el, pairs) => pairs.map(p => el.fndBroadcast(p[0], p[1]))", pairs)
    for (a, b), got in zip(pairs, answers):
        try: expected = {"shape": list(torch.broadcast_shapes(a, b))}
        except RuntimeError:
            with pytest.raises(RuntimeError) as error: torch.empty(a) + torch.empty(b)
            expected = {"error": str(error.value)}
        assert got == expected, (a, b)
    assert len(pairs) >= 300 and sum("error" in g for g in answers) > 50


def test_broadcasting_figure_controls(plain_site, tab):
    figure = _open(tab, plain_site, "broadcasting.html", "bcast")
    out = figure.locator(".fnd-out")
    still = out.inner_html()   # drawn by Python: the browser's drawing of these shapes must match
    a, b = (figure.locator(f'input[data-name="{n}"]').input_value() for n in "ab")
    redrawn = figure.evaluate("(el, ab) => {const t = document.createElement('template');"
                              " t.innerHTML = el.fndRender(ab[0], ab[1]); return t.innerHTML;}",
                              [[int(s) for s in a.split(",")], [int(s) for s in b.split(",")]])
    assert redrawn == still
    figure.locator('input[data-name="a"]').fill("2, 3")
    figure.locator('input[data-name="b"]').fill("4, 3")
    assert "must match the size of tensor b (4) at non-singleton dimension 0" in out.text_content()
    assert out.locator("td.bad").count() == 3
    figure.locator("select").select_option(label="(5, 1, 4) and (3, 1)")
    assert "a + b has shape (5, 3, 4)." in out.text_content()
    assert [c.text_content() for c in out.locator("td.str").all()] == ["1→3", "(1)→5", "1→4"]
    figure.locator('input[data-name="a"]').fill("3, x")
    assert "Type each shape" in out.text_content()
    assert not tab.errors, tab.errors


def _stds(scale, relu):
    "Chapter 3's experiment as the figure runs it: its batch (seed 0) and weights (seed 1)."
    from foundations.init import activation_stds, relu as chapter_relu
    x = torch.randn(200, 100, generator=torch.Generator().manual_seed(0))
    return activation_stds(x, 50, scale, nonlinearity=chapter_relu if relu else None,
                           generator=torch.Generator().manual_seed(1)).tolist()


def _shown_stds(figure): return [_text(figure, f"s{k}") for k in (1, 10, 50)]


def test_depth_figure(plain_site, tab):
    figure = _open(tab, plain_site, "init.html", "depth")
    line = figure.locator('[data-k="line"]')
    expected = _stds(0.1, relu=False)   # the start: Xavier's 1/sqrt(100), nothing after the layers
    assert _shown_stds(figure) == [f"{expected[k]:.3g}" for k in (0, 9, 49)]
    level = line.get_attribute("points")
    slider = figure.locator('input[type="range"]')
    slider.focus()
    slider.press("End")   # ten times the recipe: scale 1, the chapter's first failure
    expected = _stds(1.0, relu=False)
    assert _shown_stds(figure) == [f"{expected[k]:.3g}" for k in (0, 9, 49)]
    stop = next(i for i, v in enumerate(expected) if not math.isfinite(v))
    assert _text(figure, "endlabel") == f"overflows at layer {stop + 1}"
    assert line.get_attribute("points") != level and _text(figure, "factor-value") == "10 × 1/√n"
    slider.press("Home")
    for _ in range(10): slider.press("ArrowRight")   # back to once the recipe
    figure.get_by_label("ReLU").check()
    figure.get_by_label("Kaiming √(2/n)").check()
    expected = _stds(math.sqrt(2 / 100), relu=True)
    assert _shown_stds(figure) == [f"{expected[k]:.3g}" for k in (0, 9, 49)]
    assert _text(figure, "endlabel") == "" and _text(figure, "scale") == f"{math.sqrt(0.02):.4g}"
    assert not tab.errors, tab.errors


def _way_one(rate):
    "Chapter 6's way 1 (our layers, our loss, our SGD step) trained at `rate`, as the chapter does."
    from foundations.init import kaiming_init, xavier_init
    from foundations.modules import Model
    from foundations.training import (load_digits, train_valid_split, fit, CrossEntropy)
    x, y = load_digits()
    x_train, y_train, x_valid, y_valid = train_valid_split(x, y)
    mean, std = x_train.mean(), x_train.std()
    g = torch.Generator().manual_seed(0)
    model = Model(kaiming_init(64, 100, generator=g), torch.zeros(100),
                  xavier_init(100, 10, generator=g), torch.zeros(10))
    model.loss = CrossEntropy()
    def predict(xb):
        for layer in model.layers: xb = layer(xb)
        return xb
    def step(xb, yb):
        loss = model(xb, yb)
        model.backward()
        for p in model.params: p.add_(p.g, alpha=-rate)
        return loss
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try: return fit(step, predict, (x_train - mean) / std, y_train, (x_valid - mean) / std, y_valid,
                    10, 32, generator=torch.Generator().manual_seed(0))
    finally: torch.set_num_threads(threads)


def _shown_history(figure): return [_text(figure, k) for k in ("tl", "vl", "va")]


def _formatted(history):
    return [f"{history['train_loss'][-1]:.3g}", f"{history['valid_loss'][-1]:.3g}",
            f"{history['valid_acc'][-1]:.1%}"]


def test_learning_rate_figure(plain_site, tab):
    figure = _open(tab, plain_site, "training.html", "rate")
    assert _text(figure, "rate") == "0.1" and _shown_history(figure) == _formatted(_way_one(0.1))
    curve = figure.locator('[data-k="train_loss"]').get_attribute("points")
    slider = figure.locator('input[type="range"]')
    slider.focus()
    slider.press("End")
    history = _way_one(10.0)
    assert _text(figure, "rate") == "10" and _shown_history(figure) == _formatted(history)
    assert figure.locator('[data-k="train_loss"]').get_attribute("points") != curve
    assert history["train_loss"][0] > 10 and history["valid_acc"][-1] < 0.3   # visibly diverged
    slider.press("ArrowLeft")
    assert _text(figure, "rate") == "3"
    assert not tab.errors, tab.errors


def test_backward_figure(plain_site, tab):
    "The hand-made graph of the figures chapter: L = d * d, d = a * b + a, at a = 2, b = -3."
    figure = _open(tab, plain_site, "figures.html", "backward")
    a, b = torch.tensor(2., requires_grad=True), torch.tensor(-3., requires_grad=True)
    d = a * b + a
    (d * d).backward()
    buttons = {name: figure.get_by_role("button", name=name)
               for name in ("◀ Back", "Step ▶", "Reset")}
    assert buttons["◀ Back"].is_disabled() and "Before backward" in _text(figure, "say")
    buttons["Step ▶"].focus()
    for _ in range(5): buttons["Step ▶"].press("Enter")
    assert buttons["Step ▶"].is_disabled() and figure.get_attribute("data-state") == "5"
    assert _text(figure, "g3") == f".grad {a.grad.item():g}"
    assert _text(figure, "g4") == f".grad {b.grad.item():g}"
    assert f"a.grad = {a.grad.item():g}; b.grad = {b.grad.item():g}." in _text(figure, "say")
    buttons["◀ Back"].click()
    buttons["◀ Back"].click()
    buttons["◀ Back"].click()   # after step 2: a holds d's -8 and waits for c's 24
    assert _text(figure, "g3") == "Σ -8" and _text(figure, "t3") == "-8"
    buttons["Step ▶"].click()   # c hands a 24: a's sum is written out
    assert "added to what it had: -8 + 24 = 16" in _text(figure, "say")
    assert _text(figure, "g3") == "Σ 16 (2 parts)"
    buttons["Reset"].click()
    assert figure.get_attribute("data-state") == "0" and _text(figure, "g3") == ""
    assert not tab.errors, tab.errors


def _figures_in(page):
    "The markup of each figure in a built page, as the page holds it (before any script ran)."
    html, figures, start = page.read_text(), [], 0
    while (start := html.find('<div class="fnd-fig"', start)) >= 0:
        end = html.index("})();</script></div>", start) + len("})();</script></div>")
        figures.append(html[start:end])
        start = end
    return figures


def test_every_figure_fits_and_degrades(plain_site, browser):
    "Under 200 KB; no sideways scroll in a 390 px window; a still frame with scripts off."
    narrow = browser.new_page(viewport={"width": 390, "height": 800})
    still = browser.new_context(java_script_enabled=False, viewport=VIEWPORT).new_page()
    pages = _pages_with(plain_site)
    assert set(FIGURE_PAGES) <= set(pages), pages
    for name in pages:
        narrow.goto((plain_site / name).as_uri(), wait_until="load")
        for figure in narrow.locator(".fnd-fig").all():
            markup = figure.evaluate("el => el.outerHTML")
            assert len(markup.encode()) < 200_000, f"{name}: a figure of {len(markup):,} characters"
            box = figure.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
            assert figure.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), name
        for markup in _figures_in(plain_site / name):   # as built, each alone, scripts off
            still.set_content(markup)
            assert still.locator(".fnd-still").is_visible()
            assert not still.locator(".fnd-controls").is_visible()
            assert still.locator("svg, table").first.is_visible(), name
    narrow.close()
    still.context.close()


def test_every_backward_figure_ends_with_every_gradient(plain_site, tab):
    "On every page (chapter 9's too): Step to the end; each finished node shows its gradient."
    for name in _pages_with(plain_site, "backward"):
        tab.goto((plain_site / name).as_uri(), wait_until="load")
        for figure in tab.locator('.fnd-fig[data-figure="backward"]').all():
            data = json.loads(figure.locator("script.fnd-data").text_content())
            n = len(data["grads"])
            step = figure.get_by_role("button", name="Step ▶")
            for _ in range(n): step.click()
            assert step.is_disabled() and figure.get_attribute("data-state") == str(n), name
            for node in data["grads"]:
                assert _text(figure, f"g{node}").startswith((".grad ", "grad ")), (name, node)
            assert "Done: " in _text(figure, "say"), name
    assert not tab.errors, tab.errors
