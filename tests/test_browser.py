"""The rendered book as a reader sees it: headless Chromium, network off, offline assets.

The session fixture builds the quick book with ``--offline-assets`` (MathJax, the widget
manager and RequireJS served from ``_build/html/_assets``). The conftest runs these tests
last and the notebook tests before them store every trained model in the session's result
cache (``HVAE_CACHE=write``), so this build reads them instead of training again.

Every page of ``_toc.yml`` is opened on a local HTTP server with every host name except
127.0.0.1 unresolvable, and we assert: the math is typeset (every ``.math`` element holds a
MathJax ``mjx-container``, no ``mjx-merror``), every image loaded (``naturalWidth > 0``) and every figure has alt text,
every widget view rendered, no console error, no request left the machine. A screenshot of
each page goes to ``_build/screenshots/``. On chapter 1's explorer, moving the slider with
the keyboard changes the displayed image (the slider is ``jslink``-ed to a ``Stack``, so this
works without a kernel).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped
without them unless ``HVAE_BROWSER_REQUIRED=1`` (``.ci/run`` sets it after installing them).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvae_lib.book import REPO_ROOT, build, toc_files

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HVAE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HVAE_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
PAGES = [f.relative_to(REPO_ROOT).with_suffix(".html").as_posix() for f in toc_files()]
EXPLORER_PAGE = "book/01_rate_distortion.html"


def _browser_missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return ""


@pytest.fixture(scope="session")
def browser_available() -> None:
    missing = _browser_missing()
    if missing:
        if os.environ.get("HVAE_BROWSER_REQUIRED") == "1":
            pytest.fail(f"browser tests required but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def offline_book(browser_available: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the quick book with offline assets; return its HTML folder.

    ``HVAE_BROWSER_HTML`` names an HTML folder already built with ``--offline-assets`` to check
    instead (a developer's shortcut; CI always builds).
    """
    prebuilt = os.environ.get("HVAE_BROWSER_HTML")
    if prebuilt and not os.environ.get("CI"):
        html = Path(prebuilt)
        assert (html / "_assets" / "mathjax" / "tex-mml-chtml.js").is_file(), (
            f"{html} has no offline assets"
        )
        return html
    out = tmp_path_factory.mktemp("book")
    t0 = time.perf_counter()
    code = build(
        profile="quick",
        device="cpu",
        seed=0,
        threads=1,
        output=out,
        cache=True,
        offline_assets=True,
        progress=False,
    )
    print(f"offline quick book built in {time.perf_counter() - t0:.0f} s")
    assert code == 0, "the quick book with offline assets did not build (see the output above)"
    html = out / "_build" / "html"
    assert (html / "_assets" / "mathjax" / "tex-mml-chtml.js").is_file()
    return html


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="session")
def server(offline_book: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(offline_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def driver(browser_available: None) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1280,1600",
        # the network is off: every host name but the local server fails to resolve
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _wait(d: Any, script: str, timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = d.execute_script(script)
        if value or time.monotonic() > end:
            return value
        time.sleep(0.25)


MATH_DONE = """
const m = document.querySelectorAll('.math');
return Array.from(m).every(e => e.querySelector('mjx-container'));
"""
WIDGETS_DONE = """
const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
return Array.from(views).every(s => s.parentElement.querySelector('.jupyter-widgets'));
"""
IMAGES_DONE = "return Array.from(document.images).every(i => i.complete);"
#: display equations wider than their column (cut off, or scrolled sideways)
WIDE_EQUATIONS = """
return Array.from(document.querySelectorAll('mjx-container[display="true"]')).filter(c => {
  const m = c.querySelector('mjx-math');
  return m && m.getBoundingClientRect().width > c.getBoundingClientRect().width + 1;
}).map(c => (c.textContent || '').slice(0, 60));
"""
#: what a reader must not see: papermill's injected cell, the parameters code, bookkeeping
HIDDEN_BOOKKEEPING = """
const out = [];
if (document.querySelector('.tag_injected-parameters')) out.push('injected-parameters cell');
const text = document.body.innerText;
if (text.includes('os.environ.get("HVAE_PROFILE"')) out.push('parameters code visible');
if (/^\\s*glue\\(/m.test(text)) out.push('glue() calls visible');
return out;
"""
#: build-machine paths and pointers to material outside the book (our notes, digests)
FORBIDDEN_TEXT = (
    "/work/",
    "/tmp/",
    "/root/",
    "/home/",
    str(REPO_ROOT),
    "the digest",
    "our digest",
    "digest §",
    "DESIGN.md",
    "semafovae.md",
    "rate_splitting.md",
    "shared/papers",
)


def forbidden_text(text: str) -> list[str]:
    """The entries of :data:`FORBIDDEN_TEXT` that occur in a page's text."""
    return [s for s in FORBIDDEN_TEXT if s in text]


def test_forbidden_text_is_found() -> None:
    """Negative control of the page-text check."""
    assert str(REPO_ROOT) in forbidden_text(f"claims read from {REPO_ROOT}/_build/claims")
    assert forbidden_text("as our digest records it (semafovae.md §1)") == [
        "our digest",
        "semafovae.md",
    ]
    assert forbidden_text("The VAE as a rate–distortion machine") == []


def _open(d: Any, url: str) -> list[dict[str, Any]]:
    d.get_log("browser")  # drop what an earlier page left
    d.get(url)
    _wait(d, "return document.readyState === 'complete'")
    _wait(d, IMAGES_DONE)
    _wait(d, WIDGETS_DONE)
    _wait(d, MATH_DONE)
    time.sleep(0.5)  # late console messages
    return d.get_log("browser")


def _screenshot(d: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = min(int(d.execute_script("return document.documentElement.scrollHeight")), 20000)
    d.set_window_size(1280, max(height, 800))
    path = SCREENSHOTS / f"{name}.png"
    d.save_screenshot(str(path))
    d.set_window_size(1280, 1600)
    return path


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(page: str, server: str, driver: Any) -> None:
    d = driver
    log = _open(d, f"{server}/{page}")
    num_math = d.execute_script("return document.querySelectorAll('.math').length")
    typeset = d.execute_script(MATH_DONE)
    errors = d.execute_script("return document.querySelectorAll('mjx-merror').length")
    broken = d.execute_script(
        "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
    )
    views = d.execute_script(
        "return document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length"
    )
    rendered = d.execute_script(WIDGETS_DONE)
    remote = d.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(location.origin) && !n.startsWith('data:') && !n.startsWith('blob:'))"
    )
    no_alt = d.execute_script(
        "return Array.from(document.images).filter(i => !i.closest('.jupyter-widgets'))"
        ".filter(i => !i.alt || /\\.(png|jpe?g|svg|gif)$/i.test(i.alt)).map(i => i.src)"
    )
    severe = [e["message"] for e in log if e["level"] == "SEVERE"]
    # every page, the API page's docstrings included (long ones split with \\ in `.. math::`)
    wide = d.execute_script(WIDE_EQUATIONS)
    bookkeeping = d.execute_script(HIDDEN_BOOKKEEPING)
    leaks = forbidden_text(d.execute_script("return document.body.innerText"))
    shot = _screenshot(d, Path(page).stem)
    print(
        f"{page}: {num_math} math elements, {len(d.find_elements('tag name', 'img'))} images, "
        f"{views} widget views, screenshot {shot}"
    )
    assert typeset, f"{page}: math left untypeset (raw TeX visible)"
    assert errors == 0, f"{page}: {errors} MathJax errors"
    assert not broken, f"{page}: images failed to load: {broken}"
    assert not no_alt, f"{page}: figures without alt text (mystnb.image.alt): {no_alt}"
    assert rendered, f"{page}: {views} widget views, not all rendered"
    assert not remote, f"{page}: requests left the machine: {remote}"
    assert not severe, f"{page}: console errors: {severe}"
    assert not wide, f"{page}: display equations wider than the text column at 1280 px: {wide}"
    assert not bookkeeping, f"{page}: a reader sees {bookkeeping}"
    assert not leaks, f"{page}: the page mentions {leaks}"


def test_wide_equation_is_detected(server: str, driver: Any) -> None:
    """Negative control of the equation-width check: an over-long equation typeset on a page."""
    d = driver
    _open(d, f"{server}/{EXPLORER_PAGE}")
    assert d.execute_script(WIDE_EQUATIONS) == []
    long_tex = "\\[" + "+".join(f"x_{{{i}}}^{{2}}" for i in range(120)) + "\\]"
    d.execute_script(
        """
        const div = document.createElement('div');
        div.className = 'math notranslate nohighlight';  // the class Sphinx's MathJax processes
        div.textContent = arguments[0];  // TeX with its display delimiters
        document.querySelector('article').appendChild(div);
        MathJax.typesetPromise([div]);
    """,
        long_tex,
    )
    wide = _wait(
        d,
        WIDE_EQUATIONS.replace("return Array", "const r = Array", 1)
        + "return r.length ? r : null;",
        timeout=20,
    )
    assert wide, "an equation wider than the column was not reported"


def _visible_image(d: Any) -> str:
    return d.execute_script("""
        const box = document.querySelector('.widget-vbox');
        const imgs = Array.from(box.querySelectorAll('img')).filter(i => i.offsetParent !== null);
        return imgs.length ? imgs[0].src : '';
    """)


def test_explorer_slider_changes_the_figure(server: str, driver: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    d = driver
    _open(d, f"{server}/{EXPLORER_PAGE}")
    handles = d.find_elements(
        "css selector", ".widget-vbox .noUi-handle, .widget-vbox input[type=range]"
    )
    assert handles, "no slider in the explorer"
    before = _visible_image(d)
    assert before, "the explorer shows no image"
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", handles[0])
    handles[0].click()
    handles[0].send_keys(Keys.ARROW_RIGHT)
    changed = _wait(
        d,
        f"""
        const box = document.querySelector('.widget-vbox');
        const imgs = Array.from(box.querySelectorAll('img')).filter(i => i.offsetParent !== null);
        return imgs.length && imgs[0].src !== {before!r};
    """,
        timeout=10,
    )
    after = _visible_image(d)
    _screenshot(d, Path(EXPLORER_PAGE).stem + "_slider_moved")
    assert changed and after and after != before, (
        "moving the slider did not change the displayed figure"
    )


@pytest.fixture(scope="module")
def jupyterlab(browser_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab (README: ``.venv/bin/jupyter lab book/``) on loopback, over a copy of chapter 1.

    The copy keeps the test from saving executed outputs into the checkout (JupyterLab
    autosaves both files of a jupytext pair). ``expose_app_in_browser`` lets the test drive
    JupyterLab's commands.
    """
    from jupyter_util import jupyter_server

    root = tmp_path_factory.mktemp("lab")
    (root / "book").mkdir()
    for name in ("01_rate_distortion.md", "01_rate_distortion.ipynb"):
        shutil.copy2(REPO_ROOT / "book" / name, root / "book" / name)
    shutil.copy2(REPO_ROOT / "jupytext.toml", root / "jupytext.toml")
    env = {"HVAE_PROFILE": "quick", "HVAE_DEVICE": "cpu", "HVAE_THREADS": "1"}
    with jupyter_server(
        root,
        root / ".jupyter",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        lab=True,
        env=env,
    ) as base:
        yield base


def test_chapter_runs_in_jupyterlab(jupyterlab: str, driver: Any) -> None:
    """Chapter 1's MyST source opens in JupyterLab as a notebook; running its cells renders the
    explorer's slider (a live widget, with a kernel)."""
    from jupyter_util import TOKEN

    d = driver
    d.get(f"{jupyterlab}/lab?token={TOKEN}")
    assert _wait(d, "return !!(window.jupyterapp && window.jupyterapp.commands)", timeout=90), (
        "JupyterLab did not load"
    )
    _wait(d, "return document.querySelector('.jp-DirListing') !== null", timeout=60)
    d.execute_script(
        "window.jupyterapp.commands.execute('docmanager:open', "
        "{path: 'book/01_rate_distortion.md', factory: 'Jupytext Notebook'})"
    )
    assert _wait(
        d, "return document.querySelectorAll('.jp-Notebook .jp-Cell').length > 10", timeout=60
    ), "the chapter's .md did not open as a notebook"
    assert _wait(
        d,
        "return window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status "
        "=== 'idle'",
        timeout=120,
    ), "the kernel did not start"
    d.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    slider = _wait(
        d,
        "return document.querySelector('.jp-OutputArea .widget-slider, "
        ".jp-OutputArea .jupyter-widgets input[type=range], .jp-OutputArea .noUi-target') !== null",
        timeout=600,
    )
    errors = d.execute_script(
        "return Array.from(document.querySelectorAll("
        "'.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"] pre'))"
        ".map(e => e.textContent).filter(t => /Error|Traceback/.test(t)).slice(0, 3)"
    )
    _screenshot(d, "jupyterlab_01_rate_distortion")
    assert not errors, f"a cell failed in JupyterLab: {errors}"
    assert slider, "the explorer's slider did not render in JupyterLab"
