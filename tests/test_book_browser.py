"""The built HTML book in a real browser: every page of _build/html in headless Debian Chromium.

For each page: no console errors, no failed request, no request leaving localhost, MathJax has
rendered (no raw ``$$`` or ``\\(`` left in the visible text, no MathJax error), every image
loaded, and every internal link points to a file of the build (and to an existing anchor).
Also: the HTML animation player of a notebook page changes its frame when the slider moves, and
screenshots of the intro page and of one notebook page go to _build/screenshots/. At a 1,300 px wide
window no display equation is wider than its column, and notebook pages show no ``# NBVAL_`` marker
and no Colab install cell. The public book shows exercise solutions only collapsed and no assignment;
the instructor edition (_build/instructor/html, ``make book-instructor``) renders its rubrics and
assignment pages with their solutions and hidden tests.

Run by ``make browser`` (part of ``make test``) after ``make book``; there a missing build or a
missing browser is a failure. Run alone (``pytest tests``) without them, the tests are skipped
with the reason. One browser serves all pages.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import tempfile
import threading
import time
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("MINIDIFF_REQUIRE_BOOK") == "1"  # set by `make browser`
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ANIMATION_CHAPTER = "notebooks/01_forward_process"
PAGE_TIMEOUT_S = 30.0
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "chrome-untrusted", "devtools")


def _missing(reason: str):
    """A missing prerequisite fails under `make browser` and skips (with the reason) otherwise."""
    if REQUIRED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _pages() -> list[pathlib.Path]:
    """Every HTML page of the build (not the theme's static files nor the page sources)."""
    skip = {"_static", "_sources", "_images", "_panels_static"}
    return sorted(p for p in HTML.rglob("*.html") if not skip & set(p.relative_to(HTML).parts))


def _toc_files() -> list[str]:
    return re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", (ROOT / "_toc.yml").read_text(), flags=re.M)


def _notebook_pages() -> list[pathlib.Path]:
    """Built pages whose source is a notebook listed in the table of contents."""
    return [HTML / f"{f}.html" for f in _toc_files() if (ROOT / f"{f}.ipynb").exists()]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


def _serve(directory: pathlib.Path) -> http.server.ThreadingHTTPServer:
    """An HTTP server of ``directory`` on 127.0.0.1 at an ephemeral port, in a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def site():
    """Serve _build/html on 127.0.0.1 at an ephemeral port; yields the base URL."""
    if not (HTML / "index.html").exists():
        _missing(f"no built book at {HTML}/index.html: run `make book` first (`make test` does)")
    built = (HTML / "index.html").stat().st_mtime
    sources = [ROOT / "_toc.yml", ROOT / "_config.yml"] + [
        p for f in _toc_files() for p in (ROOT / f"{f}.md", ROOT / f"{f}.ipynb") if p.exists()]
    stale = [str(p.relative_to(ROOT)) for p in sources if p.stat().st_mtime > built]
    if stale:
        _missing(f"the build in {HTML} is older than {stale[:3]}{' …' if len(stale) > 3 else ''}: run `make book`")
    server = _serve(HTML)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium (Debian's, driven by Debian's chromedriver) for every test."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            _missing(f"{path} not found: install Debian's {pkg} (`make browser-deps`)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="minidiff-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    driver.get("about:blank")  # let the fresh profile settle, then drop what its start-up logged
    time.sleep(0.5)
    driver.get_log("performance")
    driver.get_log("browser")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Resolves when the page's MathJax (if it loads one) has typeset everything and the fonts are in.
_WAIT_FOR_RENDER = """
const done = arguments[arguments.length - 1];
const t0 = Date.now();
const fonts = () => (document.fonts ? document.fonts.ready : Promise.resolve());
function poll() {
  const wantsMathJax = !!document.querySelector('script[src*="mathjax"]');
  if (!wantsMathJax) { fonts().then(() => done('no-mathjax')); return; }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(fonts).then(() => done('typeset'), (e) => done('mathjax-error: ' + e));
    return;
  }
  if (Date.now() - t0 > 20000) { done('mathjax-never-started'); return; }
  setTimeout(poll, 25);
}
if (document.readyState === 'complete') poll(); else window.addEventListener('load', poll);
"""

# The text a reader sees, outside code, scripts and rendered math.
_VISIBLE_TEXT = """
const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'PRE', 'CODE', 'TEXTAREA', 'MJX-CONTAINER']);
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  let el = node.parentElement, hidden = false;
  for (let a = el; a; a = a.parentElement) { if (skip.has(a.tagName)) { hidden = true; break; } }
  if (hidden || !el.getClientRects().length) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none') continue;
  out.push(node.textContent);
}
return out.join(' ');
"""

_PAGE_FACTS = """
const imgs = Array.from(document.images)
  .map((i) => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}));
const links = Array.from(document.querySelectorAll('a[href]')).map((a) => a.href);
const mathErrors = Array.from(document.querySelectorAll('mjx-merror, mjx-container [style*="color: red"]'))
  .map((e) => (e.closest('mjx-container') || e).textContent.slice(0, 120));
const rawMath = document.querySelectorAll('.math:not(:has(mjx-container))').length;
return {imgs, links, mathErrors, rawMath, mathjax: document.querySelectorAll('mjx-container').length};
"""


def _load(driver, url: str) -> str:
    driver.get(url)
    return driver.execute_async_script(_WAIT_FOR_RENDER)


def _wait_for_images(driver, timeout_s: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        imgs = driver.execute_script(_PAGE_FACTS)["imgs"]
        if all(i["ok"] for i in imgs) or time.monotonic() > deadline:
            return imgs
        driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach((i) => i.loading = 'eager')")
        time.sleep(0.1)


def _network_problems(entries: list[dict], origin: str) -> list[str]:
    """Requests that left 127.0.0.1 or failed, from Chrome's performance (CDP Network) log."""
    problems, urls = [], {}
    for entry in entries:
        msg = json.loads(entry["message"])["message"]
        method, params = msg.get("method", ""), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            # data:, blob: and the browser's own chrome:// pages never touch the network.
            if not (url.startswith(origin + "/") or url.split(":", 1)[0] in LOCAL_SCHEMES):
                problems.append(f"request leaves localhost: {url}")
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            if status >= 400:
                problems.append(f"HTTP {status}: {params['response']['url']}")
        elif method == "Network.loadingFailed":
            if params.get("canceled") and not params.get("blockedReason"):
                continue  # the browser dropped it on leaving the page, not a failure of the page
            url = urls.get(params["requestId"], params["requestId"])
            problems.append(f"failed request ({params.get('errorText')}): {url}")
    return problems


@functools.cache
def _anchors(path: pathlib.Path) -> frozenset[str]:
    text = path.read_text(errors="replace")
    return frozenset(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))


def _link_problems(links: list[str], origin: str, root: pathlib.Path = HTML) -> list[str]:
    """Internal hrefs that point to no file of the build, or to a missing anchor of an HTML file."""
    problems = []
    for href in sorted(set(links)):
        if not href.startswith(origin + "/"):
            continue  # external (GitHub, Colab, ...) or mailto: not requested by the page, not checked here
        parts = urllib.parse.urlsplit(href)
        rel = urllib.parse.unquote(parts.path).lstrip("/")
        target = root / rel
        if rel == "" or rel.endswith("/"):
            target = target / "index.html"
        if not target.resolve().is_relative_to(root.resolve()) or not target.is_file():
            problems.append(f"broken internal link: {href}")
        elif parts.fragment and target.suffix == ".html":
            frag = urllib.parse.unquote(parts.fragment)
            if frag not in _anchors(target):
                problems.append(f"link to a missing anchor: {href}")
    return problems


def _check_page(driver, origin: str, page: pathlib.Path, root: pathlib.Path = HTML) -> list[str]:
    url = f"{origin}/{page.relative_to(root).as_posix()}"
    state = _load(driver, url)
    problems = [] if state in ("typeset", "no-mathjax") else [f"MathJax: {state}"]
    imgs = _wait_for_images(driver)
    facts = driver.execute_script(_PAGE_FACTS)
    text = driver.execute_script(_VISIBLE_TEXT)
    for raw in ("$$", "\\(", "\\)", "\\[", "\\begin{"):
        if raw in text:
            i = text.index(raw)
            problems.append(f"raw math {raw!r} in the visible text: ...{text[max(0, i - 60):i + 60]!r}...")
    if facts["rawMath"]:
        problems.append(f"{facts['rawMath']} math elements not typeset by MathJax")
    problems += [f"MathJax error in: {m!r}" for m in facts["mathErrors"]]
    problems += [f"image not loaded: {i['src'][:120]}" for i in imgs if not i["ok"]]
    problems += _link_problems(facts["links"], origin, root)
    time.sleep(0.05)  # let late font and image requests land in the logs
    problems += _network_problems(driver.get_log("performance"), origin)
    problems += [f"console {e['level']}: {e['message'][:300]}" for e in driver.get_log("browser")
                 if e["level"] in ("SEVERE", "ERROR")]
    return problems


def test_every_page_renders_offline_with_math_images_and_links(site, browser):
    pages = _pages()
    assert len(pages) >= 5, f"expected the book's pages under {HTML}, found {len(pages)}"
    listed = [f for f in _toc_files() if not (HTML / f"{f}.html").exists()]
    assert not listed, f"chapters in _toc.yml without a built page: {listed}"
    report = {}
    browser.get_log("performance")
    browser.get_log("browser")
    for page in pages:
        problems = _check_page(browser, site, page)
        if problems:
            # A real defect (broken link, raw math, missing image, external request) shows on every load;
            # a one-off (a request the browser dropped under load) does not. Reload once, print the
            # first load's problems either way, and fail on what the second load still shows.
            print(f"{page.relative_to(HTML).as_posix()}: first load: {problems}")
            problems = _check_page(browser, site, page)
        if problems:
            report[page.relative_to(HTML).as_posix()] = problems
    assert not report, "pages with problems:\n" + "\n".join(
        f"{page}:\n  " + "\n  ".join(probs) for page, probs in report.items())


def test_math_is_rendered_by_the_local_mathjax(site, browser):
    """The math chapters load MathJax from the build and typeset their equations with the book's macros."""
    state = _load(browser, f"{site}/book/posterior.html")
    assert state == "typeset", state
    src = browser.execute_script("return document.querySelector('script[src*=\"mathjax\"]').src")
    assert src.startswith(site + "/_static/mathjax/"), src
    facts = browser.execute_script(_PAGE_FACTS)
    assert facts["mathjax"] >= 20, f"only {facts['mathjax']} typeset formulas on the posterior chapter"
    assert not facts["mathErrors"], facts["mathErrors"]
    # \btilde (a book macro) must have been expanded: its rendering contains a tilde accent over beta.
    speech = browser.execute_script(
        "return Array.from(document.querySelectorAll('mjx-assistive-mml')).map((e) => e.textContent).join(' ')")
    assert "β̃" in speech or ("β" in speech and "~" in speech), "the \\btilde macro did not render"


def _animation_page() -> pathlib.Path | None:
    if (ROOT / f"{ANIMATION_CHAPTER}.ipynb").exists() and ANIMATION_CHAPTER in _toc_files():
        return HTML / f"{ANIMATION_CHAPTER}.html"
    for page in _notebook_pages():
        if page.exists() and "_anim_slider" in page.read_text(errors="replace"):
            return page
    return None


def test_animation_player_changes_frame_when_the_slider_moves(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = _animation_page()
    if page is None:
        pytest.skip(f"no notebook page with an HTML animation player: {ANIMATION_CHAPTER} is not in _toc.yml yet")
    _load(browser, f"{site}/{page.relative_to(HTML).as_posix()}")
    sliders = browser.find_elements(By.CSS_SELECTOR, "input[type=range][id^='_anim_slider']")
    assert sliders, f"{page.name}: no matplotlib animation player (to_jshtml) on the page"
    slider = sliders[0]
    uid = slider.get_attribute("id").removeprefix("_anim_slider")
    image = browser.find_element(By.ID, f"_anim_img{uid}")
    n_frames = int(slider.get_attribute("max")) + 1
    assert n_frames >= 2, f"the animation has {n_frames} frame"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    before = image.get_attribute("src")
    slider.click()  # a real click and key presses, as a reader would move the slider
    slider.send_keys(Keys.HOME)
    first = image.get_attribute("src")
    slider.send_keys(Keys.END)
    last = image.get_attribute("src")
    assert int(slider.get_attribute("value")) == n_frames - 1
    assert first != last, "the frame image did not change when the slider moved from the first to the last frame"
    assert before and first and last
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0, "the last frame did not load"


def test_screenshots_of_the_intro_and_a_notebook_page(site, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _load(browser, f"{site}/book/intro.html")
    assert browser.save_screenshot(str(SCREENSHOTS / "intro.png"))
    notebooks = [p for p in _notebook_pages() if p.exists()]
    if not notebooks:
        pytest.skip("no notebook chapter in _toc.yml yet: saved only intro.png")
    page = notebooks[0]
    _load(browser, f"{site}/{page.relative_to(HTML).as_posix()}")
    _wait_for_images(browser)
    assert browser.save_screenshot(str(SCREENSHOTS / f"{page.stem}.png"))
    assert (SCREENSHOTS / f"{page.stem}.png").stat().st_size > 10_000
    # ... and the same page at its first figure, to see that the stored outputs render.
    if browser.execute_script("const i = document.querySelector('.cell_output img');"
                              "if (i) i.scrollIntoView({block: 'center'}); return !!i"):
        time.sleep(0.2)
        assert browser.save_screenshot(str(SCREENSHOTS / f"{page.stem}_figure.png"))


# The two editions. The public book shows each chapter exercise's solution collapsed (sphinx-exercise with
# :class: dropdown) and no assignment; the instructor edition (`make book-instructor`, .ci/build_instructor.py)
# adds the rubrics and the assignments' master notebooks, with their solutions and hidden tests.
INSTRUCTOR_HTML = ROOT / "_build" / "instructor" / "html"
INSTRUCTOR_ONLY = ("assignments/", "book/instructor/")  # folders of pages only the instructor edition has


@pytest.fixture(scope="module")
def instructor_site():
    """Serve _build/instructor/html; yields the base URL."""
    if not (INSTRUCTOR_HTML / "index.html").exists():
        _missing(f"no instructor edition at {INSTRUCTOR_HTML}: run `make book-instructor` first (`make test` does)")
    built = (INSTRUCTOR_HTML / "index.html").stat().st_mtime
    sources = [ROOT / "_toc.yml", ROOT / "_config.yml", *sorted((ROOT / "assignments").glob("a*.ipynb")),
               *sorted((ROOT / "book" / "instructor").glob("*.md"))]
    stale = [str(p.relative_to(ROOT)) for p in sources if p.stat().st_mtime > built]
    if stale:
        _missing(f"the instructor edition is older than {stale[:3]}: run `make book-instructor`")
    server = _serve(INSTRUCTOR_HTML)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_public_book_shows_exercise_solutions_only_collapsed_and_no_assignment(site, browser):
    from selenium.webdriver.common.by import By

    leaked = [p.relative_to(HTML).as_posix() for p in _pages()
              if p.relative_to(HTML).as_posix().startswith(INSTRUCTOR_ONLY) or "BEGIN SOLUTION" in p.read_text()]
    assert not leaked, f"assignment solutions or instructor pages in the public book: {leaked}"
    _load(browser, f"{site}/book/posterior.html")
    solutions = browser.find_elements(By.CSS_SELECTOR, "div.solution.dropdown")
    exercises = browser.find_elements(By.CSS_SELECTOR, "div.exercise")
    assert len(exercises) >= 2 and len(solutions) == len(exercises), "one solution per exercise"
    body = solutions[0].find_element(By.CSS_SELECTOR, "section, p:not(.admonition-title)")
    assert not body.is_displayed(), "a solution must be collapsed when the page opens"
    title = solutions[0].find_element(By.CSS_SELECTOR, ".admonition-title")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", title)
    title.click()
    time.sleep(0.3)
    assert body.is_displayed(), "clicking the solution's title must open it"


def test_instructor_edition_renders_rubrics_and_assignment_solutions(instructor_site, browser):
    pages = [p for p in sorted(INSTRUCTOR_HTML.rglob("*.html"))
             if p.relative_to(INSTRUCTOR_HTML).as_posix().startswith(INSTRUCTOR_ONLY)]
    masters = sorted((ROOT / "assignments").glob("a*.ipynb"))
    assert len(pages) == len(masters) + 1, f"the rubrics page and one page per master, got {pages}"
    browser.get_log("performance")
    browser.get_log("browser")
    report = {}
    for page in [INSTRUCTOR_HTML / "index.html", *pages]:
        problems = _check_page(browser, instructor_site, page, INSTRUCTOR_HTML)
        if problems:  # as above: reload once, fail on what the second load still shows
            problems = _check_page(browser, instructor_site, page, INSTRUCTOR_HTML)
        if problems:
            report[page.relative_to(INSTRUCTOR_HTML).as_posix()] = problems
    assert not report, f"instructor pages with problems: {report}"
    for master in masters:
        _load(browser, f"{instructor_site}/assignments/{master.stem}.html")
        text = browser.execute_script("return document.body.innerText")  # rendered text, code cells included
        assert "BEGIN SOLUTION" in text and "hidden: true" in text, f"{master.stem}: solutions and hidden tests"
    _load(browser, f"{instructor_site}/book/instructor/rubrics.html")
    text = browser.execute_script(_VISIBLE_TEXT)
    assert text.count("hidden tests") >= len(masters) and "Discussion answer" in text


# A display equation wider than its column is clipped (MathJax 3 does not break lines): its left part
# disappears off the column. Checked at the width of a common laptop window.
EQUATION_WINDOW = (1300, 1000)
_WIDE_EQUATIONS = """
const out = [];
for (const c of document.querySelectorAll('mjx-container[display]')) {
  const column = c.parentElement.clientWidth;
  const math = c.querySelector('mjx-math');
  const width = Math.max(c.scrollWidth, math ? math.getBoundingClientRect().width : 0);
  if (width > column + 1) out.push(`${Math.round(width)} px in a ${column} px column: ${c.textContent.slice(0, 60)}`);
}
return out;
"""


def test_no_display_equation_is_wider_than_its_column_at_1300px(site, browser):
    size = browser.get_window_size()
    browser.set_window_size(*EQUATION_WINDOW)
    try:
        report = {}
        for page in _pages():
            _load(browser, f"{site}/{page.relative_to(HTML).as_posix()}")
            wide = browser.execute_script(_WIDE_EQUATIONS)
            if wide:
                report[page.relative_to(HTML).as_posix()] = wide
    finally:
        browser.set_window_size(size["width"], size["height"])
    assert not report, f"display equations clipped in a {EQUATION_WINDOW[0]} px wide window:\n" + "\n".join(
        f"{page}:\n  " + "\n  ".join(eqs) for page, eqs in report.items())


def test_notebook_pages_show_no_test_markers_and_no_colab_install_cell(site, browser):
    """The HTML shows the reader's code: book/_ext drops the `# NBVAL_` lines and the Colab guard cell."""
    pages = [p for p in _notebook_pages() if p.exists()]
    if not pages:
        pytest.skip("no notebook chapter in _toc.yml yet")
    report = {}
    for page in pages:
        _load(browser, f"{site}/{page.relative_to(HTML).as_posix()}")
        text = browser.execute_script("return document.body.innerText")  # code cells included
        markers = {"an nbval marker": "NBVAL_", "the Colab install cell": "Google Colab only: install minidiff"}
        problems = [what for what, marker in markers.items() if marker in text]
        if problems:
            report[page.relative_to(HTML).as_posix()] = problems
    assert not report, f"notebook pages showing test machinery: {report}"
