"""The built documentation site in a real browser: headless Chromium (Debian's chromium and
chromedriver, driven by selenium) loads a few pages from a local HTTP server and checks
what a reader would see: the page is served, its images loaded, its links within the site
lead to a file and an anchor that exist, it has text, its math was rendered by MathJax
(served from the site itself), and its scripts logged no error. A PNG screenshot of each
page is kept.

``BACKENDNN_DOCS_HTML`` names the built site (the folder holding index.html); without it
this module is skipped (the backend sessions). With it, a missing selenium, chromium or
chromedriver is a failure. ``BACKENDNN_DOCS_SCREENSHOTS``: where the screenshots go
(default: screenshots/ beside the html folder). ``BACKENDNN_DOCS_GALLERY=0``: the site was
built without running the gallery, whose page may then be missing.
"""

from __future__ import annotations

import html.parser
import http.server
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from functools import partial
from pathlib import Path

import pytest

if not os.environ.get("BACKENDNN_DOCS_HTML"):
    pytest.skip("BACKENDNN_DOCS_HTML (the built site) is not set", allow_module_level=True)

ROOT = Path(os.environ["BACKENDNN_DOCS_HTML"]).resolve()
SHOTS = Path(os.environ.get("BACKENDNN_DOCS_SCREENSHOTS") or ROOT.parent / "screenshots")
GALLERY_PAGE = "auto_examples/train_digits.html"
PAGES = [
    "index.html",
    "guide/layers.html",
    "api/generated/backendnn.MLPClassifier.html",
    "auto_examples/index.html",  # the thumbnails: images
    GALLERY_PAGE,
]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTH, MIN_HEIGHT, MAX_HEIGHT = 1280, 2000, 16000
MIN_TEXT = 200  # characters of the article: a stub page ("To be written.") has fewer


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """The base URL of the site, served from a thread on a free port of 127.0.0.1."""
    assert (ROOT / "index.html").is_file(), f"BACKENDNN_DOCS_HTML={ROOT} holds no index.html"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=ROOT))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium at 1280x2000 with its console log kept; Selenium Manager (which
    would download a driver) is made to fail if selenium ever calls it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.selenium_manager import SeleniumManager
    except ImportError as err:
        pytest.fail(f"the docs browser check needs selenium 4 (pip install selenium): {err}")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            pytest.fail(f"{path} is missing: apt-get install {package}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},{MIN_HEIGHT}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _no_selenium_manager(*args, **kwargs):
    raise AssertionError("selenium called Selenium Manager: pass the driver's path explicitly")


class _Ids(html.parser.HTMLParser):
    """The anchors of an HTML file: every ``id``, and ``name`` of ``<a>``."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if v and (k == "id" or (k, tag) == ("name", "a")))


_ID_CACHE: dict[Path, set[str]] = {}


def _ids(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def _broken_links(hrefs: list[str], base: str) -> list[str]:
    """The links into the site (absolute URLs under ``base``) whose file or anchor is
    missing, each with the reason."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue
        url = urllib.parse.urlsplit(href)
        relative = urllib.parse.unquote(url.path).lstrip("/")
        target = ROOT / relative
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no file {relative or '/'})")
        elif url.fragment and target.suffix == ".html":
            fragment = urllib.parse.unquote(url.fragment)
            if fragment not in _ids(target):
                broken.append(f"{href} (no id {fragment!r} in {relative})")
    return broken


_WAIT_FOR_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { img.loading = "eager"; });
Promise.all(images.map(img => img.complete ? null : new Promise(ok => {
    img.addEventListener("load", ok); img.addEventListener("error", ok); }))).then(() => done(
    images.filter(img => !img.complete || img.naturalWidth === 0)
          .map(img => img.currentSrc || img.getAttribute("src"))));
"""
# Math is Sphinx's .math elements, or \( \[ delimiters left in the text outside code; the
# page's MathJax (where Sphinx put one) must have replaced each by an mjx-container.
_WAIT_FOR_MATH = r"""
const done = arguments[arguments.length - 1];
const math = Array.from(document.querySelectorAll(".math"));
const raw = () => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll("pre, code, script, style, textarea").forEach(e => e.remove());
    return /\\\(|\\\[/.test(body.textContent);
};
if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    done(math.length || raw() ? "the page has math but MathJax did not load" : null);
    return;
}
MathJax.startup.promise.then(() => {
    const unrendered = math.filter(m => !m.querySelector("mjx-container")).length;
    const errors = document.querySelectorAll("mjx-merror").length;
    done(unrendered || errors || raw() ? `math not rendered: ${unrendered} of ${math.length} ` +
         `math elements, ${errors} TeX errors, \\( or \\[ left in the text: ${raw()}` : null);
}, err => done(`MathJax failed: ${err}`));
"""
_ARTICLE_TEXT = """
const article = document.querySelector("article") || document.querySelector("[role=main]");
return (article || document.body).innerText.trim();
"""


GALLERY_RAN = os.environ.get("BACKENDNN_DOCS_GALLERY") != "0"


@pytest.mark.parametrize("page", PAGES)
def test_page(page, site, browser):
    if page == GALLERY_PAGE and not GALLERY_RAN and not (ROOT / page).is_file():
        pytest.skip(f"{page}: the site was built without the gallery")
    url = site + page
    try:
        urllib.request.urlopen(url, timeout=30).close()
    except urllib.error.HTTPError as err:
        pytest.fail(f"{page}: HTTP {err.code} {err.reason}", pytrace=False)
    browser.get_log("browser")  # the previous page's messages
    _viewport(browser, MIN_HEIGHT)
    browser.get(url)
    problems = []
    if not_loaded := browser.execute_async_script(_WAIT_FOR_IMAGES):
        problems.append(f"images that did not load: {not_loaded}")
    if page == GALLERY_PAGE and GALLERY_RAN:
        if not browser.execute_script("return document.querySelectorAll('article img').length"):
            problems.append("the gallery ran but the example's page shows no figure")
    hrefs = browser.execute_script("return Array.from(document.links, a => a.href)")
    if broken := _broken_links(hrefs, site):
        problems.append(f"broken links: {broken}")
    text = browser.execute_script(_ARTICLE_TEXT)
    if len(text) < MIN_TEXT:
        problems.append(f"empty page: {len(text)} characters of text ({text[:80]!r})")
    if math := browser.execute_async_script(_WAIT_FOR_MATH):
        problems.append(math)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # the browser asks for /favicon.ico by itself where a page names no icon
    errors = [e for e in errors if not e.startswith(f"{site}favicon.ico ")]
    if errors:
        problems.append(f"console errors: {errors}")
    _screenshot(browser, page)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def _viewport(browser, height: int) -> None:
    """The page's viewport WIDTH x ``height`` CSS pixels (the window's frame left out)."""
    metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def _screenshot(browser, page: str) -> None:
    """A PNG of the whole page (the viewport stretched to its height, at most MAX_HEIGHT)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    _viewport(browser, min(max(height, MIN_HEIGHT), MAX_HEIGHT))
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (page.removesuffix(".html").replace("/", "__") + ".png")
    assert browser.save_screenshot(str(path)), f"no screenshot of {page}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
