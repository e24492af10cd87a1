"""What every console answer carries (security headers) and what every POST must prove (same
origin, this session's CSRF token): a refused request gets a 403 page and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from fraud.console.session import SESSION_COOKIE, SIGN_IN_COOKIE, session_csrf_token
from fraud.console.web import CONTENT_SECURITY_POLICY
from tests.factories import database_dump
from tests.fraud.console.conftest import OFFICER_LOGIN, OFFICER_PASSWORD, ConsoleClient

QUEUE = "/console/alerts"
STATIC = Path(__file__).parents[3] / "fraud" / "console" / "static"


def assert_security_headers(headers: Mapping[str, str], *, page: bool = True) -> None:
    """``headers``: an httpx response's, or a Playwright response's (lower-case names)."""
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    if page:
        assert headers["cache-control"] == "no-store"


def assert_no_inline_code(html: str) -> None:
    """Nothing the CSP would block: every script has a src, no style elements or attributes, no handlers."""
    for script in re.findall(r"<script\b[^>]*>", html):
        assert " src=" in script, script
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert "javascript:" not in html.lower()


async def test_every_kind_of_console_answer_carries_the_security_headers(console, http):
    queue = await console.open(QUEUE)
    assert queue.status_code == 200
    assert_security_headers(queue.headers)
    assert_no_inline_code(queue.text)
    missing = await console.open("/console/no-such-page")
    assert missing.status_code == 404 and "There is no such page" in missing.text
    assert_security_headers(missing.headers)
    refused = await console.submit("/console/sign-out", csrf_token="wrong")
    assert refused.status_code == 403
    assert_security_headers(refused.headers)
    http.cookies.clear()
    redirect = await http.get(QUEUE)
    assert redirect.status_code == 303
    assert_security_headers(redirect.headers)
    sign_in = await http.get("/console/sign-in")
    assert_security_headers(sign_in.headers)
    assert_no_inline_code(sign_in.text)


async def test_static_files_are_the_vendored_ones_cached_by_content_digest(http):
    page = (await http.get("/console/sign-in")).text
    for name in ("htmx.min.js", "console.css"):
        [url] = re.findall(rf'"(/console/static/{re.escape(name)}\?v=[0-9a-f]+)"', page)
        served = await http.get(url)
        assert served.status_code == 200 and served.content == (STATIC / name).read_bytes()
        assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert_security_headers(served.headers, page=False)
    assert (await http.get("/console/static/htmx.min.js")).headers["content-type"].startswith("text/javascript")
    for probe in ("/console/static/VENDORED.txt", "/console/static/..%2Fsession.py", "/console/static/nothing.js"):
        assert (await http.get(probe)).status_code == 404, probe


async def test_a_post_without_the_right_token_is_refused_and_changes_nothing(console, http, state, officer_id):
    before = await database_dump(state)
    other_session_token = session_csrf_token(state.settings.master_key_bytes(), 999)
    for token in (None, "", "wrong", other_session_token, console.csrf_token + "x"):
        refused = await console.submit("/console/sign-out", csrf_token=token)
        assert refused.status_code == 403, token
        assert "Nothing was changed" in refused.text and "security token" in refused.text
    assert await database_dump(state) == before
    assert (await console.open(QUEUE)).status_code == 200  # still signed in


async def test_a_post_from_another_site_is_refused_even_with_the_token(console, state):
    before = await database_dump(state)
    for origin, referer in (("https://evil.example", None), ("null", None), ("https://host", None),
                            ("http://host:8080", None), (None, "https://evil.example/console/alerts"),
                            (None, None)):
        refused = await console.submit("/console/sign-out", origin=origin, referer=referer)
        assert refused.status_code == 403, (origin, referer)
        assert "Nothing was changed" in refused.text
    assert await database_dump(state) == before
    # Without an Origin header, a same-origin Referer is enough (older browsers); the token as
    # an htmx header counts like the form field.
    accepted = await console.submit("/console/sign-out", {}, csrf_token=None, origin=None,
                                    referer="http://host/console/alerts",
                                    headers={"X-CSRF-Token": console.csrf_token})
    assert accepted.status_code == 303 and SESSION_COOKIE not in console.http.cookies


async def test_the_sign_in_form_is_tied_to_its_own_cookie(http, state, officer_id):
    client = ConsoleClient(http)
    await client.open("/console/sign-in")
    assert SIGN_IN_COOKIE in http.cookies
    before = await database_dump(state)
    wrong_token = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD},
                                      csrf_token="forged")
    assert wrong_token.status_code == 403
    cross_site = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD},
                                     origin="https://evil.example")
    assert cross_site.status_code == 403
    http.cookies.delete(SIGN_IN_COOKIE)
    expired = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD})
    assert expired.status_code == 403 and "the sign-in form has expired" in expired.text
    assert await database_dump(state) == before  # not even a failed-attempt count
    assert SESSION_COOKIE not in http.cookies
