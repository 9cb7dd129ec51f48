# SPDX-License-Identifier: Apache-2.0
"""The console in a real browser, end to end, the shortest way (docs/api.md "The
console"): cwpp-api serves the page over HTTPS, it loads with its modules and styles
under the strict Content-Security-Policy without a single error in the browser's log,
shows the login form, and a real user who logs in sees who they are; the session cookie
stays out of the page's reach (HttpOnly). Screenshots of both pages, desktop and phone
width, land in the test log directory."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# the login form as tests/browser/conftest.py's login fixture finds it
USER_FIELD = 'input[name="username"], input[autocomplete="username"]'
PASSWORD_FIELD = 'input[name="password"], input[type="password"]'


def visible(driver, css):
    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def test_the_login_page_loads_without_errors(browser, console_url, console_api, shot,
                                             browser_errors):
    browser.get(console_url)
    WebDriverWait(browser, 30).until(lambda d: visible(d, USER_FIELD) and
                                     visible(d, PASSWORD_FIELD))
    assert browser.title
    assert browser.execute_script("return document.readyState") == "complete"
    # the page's modules are ours, from /console/, and the answer carried the policy
    srcs = browser.execute_script(
        "return [...document.querySelectorAll('script')].map(s => s.src)")
    assert srcs and all(s.startswith(console_url + "console/") for s in srcs), srcs
    st, _, h = console_api.get("/", raw=True)
    assert st == 200 and "script-src 'self'" in h["Content-Security-Policy"]
    desktop, phone = shot(browser, "login")
    assert desktop.stat().st_size > 0 and phone.stat().st_size > 0
    assert browser_errors(browser) == []


def test_logging_in_shows_who_you_are(browser, console_url, make_user, login, shot,
                                      browser_errors):
    user, password = make_user("acct-a", role="analyst")
    browser.get(console_url)
    login(browser, user, password)
    who = [e.text for e in browser.find_elements(By.ID, "whoami") if e.is_displayed()]
    assert any(user in w for w in who), who
    assert not visible(browser, PASSWORD_FIELD)
    # the session is the HttpOnly cookie: the page's scripts cannot read it
    assert "cwpp_session" not in browser.execute_script("return document.cookie")
    assert any(c["name"] == "cwpp_session" and c["httpOnly"] and c["secure"]
               for c in browser.get_cookies())
    shot(browser, "logged-in")
    assert browser_errors(browser) == []
