# SPDX-License-Identifier: Apache-2.0
"""The console's browser tests: Debian's Chromium, headless, driven by Selenium through
/usr/bin/chromedriver (deploy/local/install-deps installs the three; nothing is
downloaded), against the real stack. The stack side comes from the integration tests'
helpers (tests/integration/cwpp_testlib.py): topics per test prefix, users, our
services, cwpp-api.

Fixtures:
  prefix       a fresh topic prefix with its topics (deleted when the test ends)
  services     t.Service factory: services("correlator", prefix).start().wait_ready()
  console_api  cwpp-api for the test's prefix over HTTPS (a certificate made for this
               session, for 127.0.0.1) serving the console of this tree, or of
               $CWPP_API_CONSOLE_DIR when set; .get/.post/.token(user) as in cwpp_testlib.
               A test marked @pytest.mark.api_env(NAME="value", ...) starts it with those
               variables too (e.g. CWPP_API_COMMAND_TIMEOUT_MS, to meet a 202 sooner)
  console_url  its address, https://127.0.0.1:PORT/
  make_user    make_user(*accounts, role="analyst") -> (name, password): a new user who
               can log in (a fresh name per call; the database keeps users between runs)
  browser      a Selenium Chrome webdriver, headless, viewport 1280x800, whose browser
               log is kept (browser_errors); it trusts the session's certificate only (by its
               public key: --ignore-certificate-errors-spki-list), proxies and network
               services off; its downloads land in download_dir without asking
  download_dir the directory (empty, one per test) where the browser saves downloads;
  wait_download  wait_download(download_dir, suffix) -> Path: waits for the one finished
               download whose name ends with suffix
  login        login(browser, user, password): opens the console when the browser is
               elsewhere, fills in the login form and waits until the page says who is
               logged in
  shot         shot(browser, name, at=None) -> (desktop PNG, phone PNG): the page at
               1280x800 and at 390 px wide (a phone's viewport, 390x844), saved under the
               test log directory ($CWPP_TEST_LOG_DIR, else build/test-logs) in browser/;
               at, a CSS selector, is scrolled to the top of the view at each width
  browser_errors  browser_errors(browser) -> the browser log's errors since the last call
               (console.error, uncaught exceptions, CSP violations, files that failed to
               load; not the API's own 4xx answers, which a page meets on purpose, e.g.
               GET /api/v1/me before logging in, nor the browser's own /favicon.ico)

What the harness expects of the page (services/api/console/): the login form has an input
named "username" (or autocomplete="username") and one named "password" (or
type="password"), inside a <form> with a submit button; once logged in, the element
#whoami shows the user's name."""
import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import cwpp_testlib as t  # noqa: E402
from cwpp_fixtures import _delete_module_topics, _delete_test_topics, prefix, services  # noqa: E402,F401

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = os.environ.get("CWPP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CWPP_CHROMEDRIVER", "/usr/bin/chromedriver")
LOG_DIR = Path(os.environ.get("CWPP_TEST_LOG_DIR", t.REPO / "build" / "test-logs")) / "browser"
DESKTOP = (1280, 800)
PHONE = (390, 844)
USER_FIELD = 'input[name="username"], input[autocomplete="username"]'
PASSWORD_FIELD = 'input[name="password"], input[type="password"]'
SUBMIT = 'button[type="submit"], button:not([type]), input[type="submit"]'


# ------------------------------------------------------------------ the stack side

# prefix, services and the topics' clean-up: tests/integration/cwpp_fixtures.py


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory):
    """(certificate, key, SPKI hash) of a self-signed P-256 certificate for 127.0.0.1,
    made for this session; the hash (base64 SHA-256 of its public key) is what Chromium
    is told to accept."""
    d = tmp_path_factory.mktemp("console-tls")
    key, crt = d / "api.key", d / "api.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                          check=True, capture_output=True).stdout
    return crt, key, base64.b64encode(hashlib.sha256(spki).digest()).decode()


def pytest_configure(config):
    config.addinivalue_line("markers", "api_env(**variables): extra environment of the "
                            "test's cwpp-api (console_api)")


@pytest.fixture
def console_api(prefix, tls_pair, tmp_path, request):
    # this tree's console, even when the binaries are another tree's (CWPP_BIN_DIR): a
    # binary's default directory is the source tree it was built from
    extra = {"CWPP_API_CONSOLE_DIR": os.environ.get("CWPP_API_CONSOLE_DIR")
             or str(t.REPO / "services" / "api" / "console")}
    marker = request.node.get_closest_marker("api_env")
    if marker is not None:
        extra.update({k: str(v) for k, v in marker.kwargs.items()})
    a = t.Api(prefix, tls=tls_pair[:2], extra_env=extra, tmp=tmp_path)
    yield a
    a.stop()


@pytest.fixture
def console_url(console_api):
    return console_api.url + "/"


@pytest.fixture
def make_user():
    """make_user(*accounts, role="analyst") -> (name, password) of a new user with that
    role, holding accounts (default acct-a), who logs in with that password."""
    def make(*accounts, role="analyst"):
        name = f"br{role[:3]}{t.tag()}{os.urandom(2).hex()}"
        password = "browser " + os.urandom(9).hex()
        t.make_user(name, *(accounts or ("acct-a",)), role=role)
        p = subprocess.run([str(t.BIN / "cwpp-admin"), "users", "password", name,
                            "--pg-dsn", t.ADMIN_DSN], input=password + "\n",
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return name, password
    return make


# ---------------------------------------------------------------- the browser side

@pytest.fixture
def download_dir(tmp_path):
    d = tmp_path / "downloads"
    d.mkdir()
    return d


def _wait_download(directory, suffix, timeout=30):
    """The one finished download in directory whose name ends with suffix (Chromium
    writes a .crdownload file first and renames it when the bytes are all there)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [p for p in Path(directory).iterdir() if p.name.endswith(suffix)]
        partial = [p for p in Path(directory).iterdir() if p.name.endswith(".crdownload")]
        if done and not partial:
            assert len(done) == 1, done
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no *{suffix} downloaded in {directory} within {timeout}s: "
                         f"{sorted(p.name for p in Path(directory).iterdir())}")


@pytest.fixture
def wait_download():
    """wait_download(directory, suffix, timeout=30) -> Path of the finished download."""
    return _wait_download


@pytest.fixture
def browser(tls_pair, download_dir):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"no {CHROMIUM} or {CHROMEDRIVER}: run deploy/local/install-deps")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--no-proxy-server",
                "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-features=Translate,MediaRouter",
                "--lang=en-US", f"--ignore-certificate-errors-spki-list={tls_pair[2]}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER),
                              options=opts)
    driver.set_page_load_timeout(30)
    # headless Chromium ignores the download preferences unless told over CDP
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(download_dir)})
    _viewport(driver, DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()


def _viewport(driver, size, mobile=False):
    """Makes the page's viewport exactly size (width, height) CSS pixels at scale 1 (the
    window's outer size would leave it to the browser); kept across navigations."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": size[0], "height": size[1], "deviceScaleFactor": 1,
                            "mobile": mobile})


# Network errors of the API's answers (GET /api/v1/me -> 401 before logging in, a 422
# refusal shown to the user): the page handles those; so is the browser's own guess at
# /favicon.ico (not a console path). Every other error counts.
_API_STATUS = re.compile(r"^https?://[^/\s]+/(api/v1/\S*|favicon\.ico) - Failed to load "
                         r"resource: the server responded with a status of (4\d\d)")


def _browser_errors(driver):
    """The SEVERE entries of the browser log since the last call, but the API's 4xx
    answers: [message, ...]."""
    out = []
    for e in driver.get_log("browser"):
        if e.get("level") != "SEVERE":
            continue
        if e.get("source") == "network" and _API_STATUS.search(e.get("message", "")):
            continue
        out.append(e.get("message", ""))
    return out


@pytest.fixture
def browser_errors():
    """browser_errors(browser) -> [message, ...]: the browser log's errors since the last
    call (see the module's docstring)."""
    return _browser_errors


@pytest.fixture
def login(console_url):
    def do(driver, user, password, timeout=30):
        if not driver.current_url.startswith(console_url):
            driver.get(console_url)
        wait = WebDriverWait(driver, timeout)
        u = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, USER_FIELD)
                                       if e.is_displayed()), False))
        p = next(e for e in driver.find_elements(By.CSS_SELECTOR, PASSWORD_FIELD)
                 if e.is_displayed())
        u.clear()
        u.send_keys(user)
        p.clear()
        p.send_keys(password)
        forms = p.find_elements(By.XPATH, "./ancestor::form")
        buttons = forms[0].find_elements(By.CSS_SELECTOR, SUBMIT) if forms else []
        if buttons:
            buttons[0].click()
        else:
            p.submit()
        wait.until(lambda d: any(user in e.text for e in d.find_elements(By.ID, "whoami")
                                 if e.is_displayed()))
    return do


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


@pytest.fixture
def shot(request):
    """shot(browser, name, at=None) -> (desktop path, phone path): PNGs of the page at
    1280x800 and 390x844 under LOG_DIR, named after the test and name, with the element
    of the CSS selector at (if any) scrolled to the top; the window is 1280x800 again
    afterwards."""
    def take(driver, name, at=None):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        base = LOG_DIR / f"{_safe(request.node.name)}-{_safe(name)}"
        paths = []
        try:
            for label, size, mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
                _viewport(driver, size, mobile)
                if at:
                    driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
                time.sleep(0.3)  # one layout and paint at the new width
                path = base.with_name(base.name + f"-{label}.png")
                assert driver.save_screenshot(str(path)), f"no screenshot {path}"
                paths.append(path)
        finally:
            _viewport(driver, DESKTOP)
        return tuple(paths)
    return take
