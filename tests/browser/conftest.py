"""Real-browser tests: Playwright drives the system Chromium (Debian's `chromium`).

Playwright never downloads a browser here (`playwright install` is not run, and its
servers are not reachable): `browser_type_launch_args` points it at the binary on
PATH, which `make test` and `.ci/run` install with apt when it is missing. Without it
the tests marked `browser` are skipped on a developer's machine; with CI=true they
fail the run instead, as tests/conftest.py does for a missing service.

Pages come from pytest-django's `live_server` (a thread of this process, on the
transactional test database); it serves /static/ itself (staticfiles' handler, from
the apps' folders), so the admin's CSS and JS load without `collectstatic`.

Playwright's sync API keeps an asyncio loop running in the main thread while it is
started, and Django refuses ORM calls from a thread with a running loop. So
Playwright lives only as long as this package's tests (the fixtures below replace
pytest-playwright's session-wide ones), with DJANGO_ALLOW_ASYNC_UNSAFE set for
exactly that time: the tests' own ORM calls are plain synchronous code.
"""

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import (
    Browser,
    BrowserContext,
    BrowserType,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Each screen's context options; every test of a flow runs on both.
SCREENS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": DESKTOP},
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
}
# The stylesheet each kind of page must have loaded (Screen.check).
ADMIN_CSS = "admin/css/base"
HOSTED_CSS = "payments/hosted/hosted.css"
# axe-core impacts that fail a test; "moderate" and "minor" ones are reported only.
FAILING_IMPACTS = ("serious", "critical")
# Serious findings already known, each on one kind of element, reported but not failed:
# (rule, a pattern of the element's CSS path and HTML) -> where it comes from and where
# to fix it. Anything else serious or critical fails,
# checked on the whole page: a new finding, or a known one elsewhere, is never hidden.
KNOWN_FINDINGS = {
    ("label-title-only", r'id="searchbar"'): (
        "Django's admin/search_form.html: the search box's <label> holds only the"
        " magnifier icon (alt text), no visible text"
    ),
    ("link-in-text-block", r"^\.breadcrumbs > a"): (
        "Django's admin/base.html styles: breadcrumb links are told from the crumb's"
        " text by colour only (flagged where the last crumb is long text, a payment's)"
    ),
    ("link-in-text-block", r'href="\?"'): (
        "Django's admin/search_form.html: the '(N total)' link after a search is told"
        " from its text by colour only"
    ),
    ("scrollable-region-focusable", r'^#\w+-group <div class="js-inline-admin-formset'): (
        "A payment's page on a phone: Django's responsive.css lets each table of the"
        " payment's story (events, attempts, refunds...) scroll sideways, and PayWave's"
        " read-only inlines hold nothing a keyboard can focus to scroll it; to fix, give"
        " the group tabindex=0 (an admin/edit_inline/tabular.html of payments' own)"
    ),
}


def chromium_path() -> str | None:
    return shutil.which("chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if "browser" in item.keywords]
    if not browser_items or chromium_path():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            "CI=true but no `chromium` on PATH: browser tests must run on CI "
            "(apt-get install chromium; `make test` does it)"
        )
    skip = pytest.mark.skip(reason="needs the system Chromium (apt-get install chromium)")
    for item in browser_items:
        item.add_marker(skip)


# --- pytest-playwright's fixtures, bounded to this package --------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            yield pw
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The system Chromium, headless unless --headed. No --no-sandbox needed as root:
    Playwright passes it itself unless `chromium_sandbox=True`."""
    path = chromium_path()
    if path is None:
        pytest.skip("needs the system Chromium (apt-get install chromium)")
    args: dict[str, Any] = {"executable_path": path}
    if pytestconfig.getoption("--headed"):
        args["headless"] = False
    if pytestconfig.getoption("--slowmo"):
        args["slow_mo"] = pytestconfig.getoption("--slowmo")
    return args


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    """Every context: English, UTC, light colours, no animations, 1 CSS px = 1 pixel."""
    return {
        "locale": "en-US",
        "timezone_id": "UTC",
        "color_scheme": "light",
        "reduced_motion": "reduce",
        "device_scale_factor": 1,
    }


# --- the two screens ----------------------------------------------------------------


@pytest.fixture
def desktop(new_context: Callable[..., BrowserContext], live_server: Any) -> BrowserContext:
    return new_context(**SCREENS["desktop"], base_url=live_server.url)


@pytest.fixture
def phone(new_context: Callable[..., BrowserContext], live_server: Any) -> BrowserContext:
    return new_context(**SCREENS["phone"], base_url=live_server.url)


@pytest.fixture(params=["desktop", "phone"])
def screen(request: pytest.FixtureRequest) -> "Screen":
    """A page on the desktop or the phone (each test runs on both), with its helpers."""
    context: BrowserContext = request.getfixturevalue(request.param)
    return Screen(request.param, context.new_page())


@pytest.fixture
def open_screen(
    browser: Browser, browser_context_args: dict[str, Any], live_server: Any
) -> Iterator[Callable[..., "Screen"]]:
    """A page on `kind` ("desktop" or "phone") in a context of its own, whose options
    (`locale`, `extra_http_headers`, ...) override the defaults; closed after the test."""
    contexts: list[BrowserContext] = []

    def open_(kind: str, *, stylesheet: str = ADMIN_CSS, **options: Any) -> Screen:
        context = browser.new_context(
            **{**browser_context_args, **SCREENS[kind], "base_url": live_server.url, **options}
        )
        contexts.append(context)
        return Screen(kind, context.new_page(), stylesheet=stylesheet)

    yield open_
    for context in contexts:
        context.close()


class Screen:
    """One page in one context: go, check with axe, take a screenshot."""

    def __init__(self, name: str, page: Page, *, stylesheet: str = ADMIN_CSS) -> None:
        self.name = name
        self.page = page
        self.stylesheet = stylesheet
        self.static_failures: list[str] = []
        self.console_errors: list[str] = []  # a script's error, a CSP refusal...
        self.axe_reports: dict[str, list[dict[str, Any]]] = {}
        page.on("response", self._watch_static)
        page.on("requestfailed", lambda request: self.static_failures.append(request.url))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.on("console", self._watch_console)

    def _watch_console(self, message: ConsoleMessage) -> None:
        """Errors in the browser's console (a script's, a CSP refusal, a resource that did
        not load); not the favicon the browser asks for by itself, nor the page's own
        status (an error page's 403 is the test's to check)."""
        where = message.location.get("url", "")
        if (
            message.type == "error"
            and where != self.page.url
            and not where.endswith("/favicon.ico")
        ):
            self.console_errors.append(f"{where}: {message.text}")

    def _watch_static(self, response: Any) -> None:
        if "/static/" in response.url and response.status >= 400:
            self.static_failures.append(f"{response.status} {response.url}")

    def check(
        self,
        name: str,
        *,
        context: Any = None,
        show: Locator | None = None,
        photo: bool = True,
        full_page: bool = False,
    ) -> None:
        """Everything a visited page must pass: its CSS and scripts loaded, no serious
        or critical axe violation (in `context`, a CSS selector or axe include/exclude,
        else the whole page); then its screenshot (unless `photo` is False): the
        viewport scrolled to `show` if given, or the whole page if `full_page`."""
        page = self.page
        page.wait_for_load_state("load")
        assert self.static_failures == [], self.static_failures
        assert page.evaluate(
            "(css) => [...document.styleSheets].some(s => (s.href || '').includes(css))",
            self.stylesheet,
        ), f"the stylesheet {self.stylesheet} did not load"
        axe_assert_clean(page, name=f"{name} ({self.name})", context=context)
        if show is not None:
            show.scroll_into_view_if_needed()
        if photo:
            screenshot(page, name, self.name, full_page=full_page)


def axe_run(page: Page, context: Any = None) -> list[dict[str, Any]]:
    """axe-core's violations on the page (its JS ships in axe-playwright-python: offline).

    axe runs in an isolated world of its own (Chromium's DevTools protocol), which sees
    the page's DOM but none of its scripts' globals: a test that paused the page's clock
    (Playwright's `page.clock`, which replaces setTimeout) does not stall axe's own timers,
    and the page's Content-Security-Policy does not apply to it."""
    cdp = page.context.new_cdp_session(page)
    try:
        frame_id = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
        world = cdp.send("Page.createIsolatedWorld", {"frameId": frame_id, "worldName": "axe"})

        def evaluate(expression: str) -> Any:
            answer = cdp.send(
                "Runtime.evaluate",
                {
                    "expression": expression,
                    "contextId": world["executionContextId"],
                    "awaitPromise": True,
                    "returnByValue": True,
                },
            )
            assert "exceptionDetails" not in answer, answer["exceptionDetails"]
            return answer["result"].get("value")

        evaluate(AXE_SCRIPT)
        options = {"resultTypes": ["violations"]}
        return list(
            evaluate(
                f"axe.run({json.dumps(context)} || document, {json.dumps(options)})"
                ".then((results) => results.violations)"
            )
        )
    finally:
        cdp.detach()


def axe_describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        lines.append(f"{v['impact']}: {v['id']} ({v['help']}) at {targets}")
    return "\n".join(lines)


def known(violation: dict[str, Any]) -> bool:
    """Every element of the violation is one of KNOWN_FINDINGS."""
    return all(
        any(
            rule == violation["id"]
            and re.search(pattern, " ".join(node["target"]) + " " + node["html"])
            for rule, pattern in KNOWN_FINDINGS
        )
        for node in violation["nodes"]
    )


def axe_assert_clean(page: Page, *, name: str, context: Any = None) -> None:
    violations = axe_run(page, context)
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS and not known(v)]
    if violations:
        print(f"axe on {name}:\n{axe_describe(violations)}")
    assert not failing, f"axe on {name}:\n{axe_describe(failing)}"


def screenshot(page: Page, name: str, screen: str, *, full_page: bool = False) -> None:
    """docs/screenshots/<name>-<screen>.png, only with PAYWAVE_SCREENSHOTS=1: ids and
    times differ at every run, so the committed images change only when asked for."""
    if os.environ.get("PAYWAVE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=SCREENSHOTS / f"{name}-{screen}.png",
        animations="disabled",
        caret="hide",
        full_page=full_page,
    )
