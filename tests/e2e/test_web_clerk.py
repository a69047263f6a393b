"""The web app's Clerk sign-in, end to end: Debian's Chromium, driven by Playwright, against the whole
local stack, with the config.json the WebContent stack deploys (devAuth false, a publishable key).

Clerk's servers cannot be reached here, so the Clerk script URL the page builds from the key
(https://<Frontend API host>/npm/@clerk/clerk-js@<major>/dist/clerk.browser.js) is answered by
Playwright's page.route with tests/e2e/clerk_standin.js: the page's code is unchanged and asks for
exactly the URL it would in production. The stand-in's session tokens are real RS256 tokens from the
stack's dev issuer, so the API's authorizer checks them as it checks Clerk's.
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from playwright.sync_api import expect

from hark.api.webapp import content_security_policy

from .conftest import REPO, launch_chromium

pytestmark = pytest.mark.e2e

STANDIN = Path(__file__).with_name("clerk_standin.js")
FAPI_HOST = "clerk.hark-standin.example"  # the Frontend API host the test key names
# Where Clerk's JavaScript quickstart (<script> tab) loads clerk-js from: the Frontend API host, a pinned major.
CLERK_SCRIPT_PATH = re.compile(r"/npm/@clerk/clerk-js@(\d+)/dist/clerk\.browser\.js")
EMAIL = "clerk-user@example.com"


@pytest.fixture(scope="module")
def browser():
    # The page's document is answered by page.route (to carry the deployed CSP), and Chromium treats
    # an intercepted document as public address space, so its uploads to the emulator on loopback
    # would meet Local Network Access checks that a deployment (CloudFront, API Gateway, S3) never does.
    playwright, browser = launch_chromium(("--disable-features=LocalNetworkAccessChecks",))
    yield browser
    browser.close()
    playwright.stop()


def publishable_key(host: str, prefix: str = "pk_test_") -> str:
    # Clerk's format: pk_test_/pk_live_ + base64 of "<Frontend API host>$" (without base64 padding)
    return prefix + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def deployed_config(api_url: str, key: str) -> dict:
    """config.json as the WebContent stack writes it in AWS (hark_infra.web.web_config)."""
    if str(REPO / "infra") not in sys.path:
        sys.path.insert(0, str(REPO / "infra"))
    from hark_infra.web import web_config

    return web_config(api_url, key)


class ClerkRoutes:
    """config.json from the deployment, and the Clerk Frontend API host answered by the stand-in."""

    def __init__(self, page, stack_url: str, key: str, serve_script: bool = True):
        self.script_requests: list[str] = []
        self.off_origin: list[str] = []
        config = deployed_config(stack_url, key)
        page.route(f"{stack_url}/config.json", lambda route: route.fulfill(json=config))
        page.route(f"{stack_url}/", self._document)
        page.route(f"https://{FAPI_HOST}/**", lambda route: self._clerk(route, serve_script))
        page.on("request", lambda r: None if r.url.startswith((stack_url, "data:")) else self.off_origin.append(r.url))

    @staticmethod
    def _document(route) -> None:
        """The page with the Content-Security-Policy CloudFront sends for this key (hark.api.webapp), so
        the browser enforces the deployed policy on Clerk's script: the local stack has no key."""
        response = route.fetch()
        directives = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
        connect = [src for src in directives["connect-src"].split() if src != "'self'"]
        headers = {**response.headers, "content-security-policy": content_security_policy(connect, FAPI_HOST)}
        route.fulfill(response=response, headers=headers)

    def _clerk(self, route, serve_script: bool) -> None:
        self.script_requests.append(route.request.url)
        if serve_script and CLERK_SCRIPT_PATH.fullmatch(urlparse(route.request.url).path):
            # crossorigin="anonymous" on the tag: the script is fetched in CORS mode, as from Clerk's CDN
            route.fulfill(
                body=STANDIN.read_text(),
                content_type="application/javascript",
                headers={"Access-Control-Allow-Origin": "*"},
            )
        else:
            route.fulfill(status=404, body="not found")


def api_calls(page, stack_url: str) -> list:
    """Every request the page makes to the jobs API, as (method, path, bearer token), in order."""
    calls: list = []

    def on_request(r):
        path = urlparse(r.url).path
        if r.url.startswith(stack_url) and path.startswith("/jobs"):
            auth = r.headers.get("authorization", "")
            calls.append((r.method, path, auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None))

    page.on("request", on_request)
    return calls


def standin(page) -> dict:
    return page.evaluate("window.__clerkStandin.record")


def test_clerk_sign_in_upload_token_refresh_and_sign_out(page, live_stack, speech, tmp_path):
    key = publishable_key(FAPI_HOST)
    routes = ClerkRoutes(page, live_stack.url, key)
    calls = api_calls(page, live_stack.url)
    clip = tmp_path / "clerk-upload.wav"
    shutil.copy(speech("Signed in with Clerk, this recording goes to Hark."), clip)

    page.goto(f"{live_stack.url}/")
    # Clerk's sign-in is mounted (no user yet); the dev form is not offered.
    signin = page.locator("#clerk-signin")
    expect(signin.get_by_role("heading", name=re.compile("Clerk stand-in"))).to_be_visible()
    expect(page.locator("#signin-form")).to_be_hidden()
    expect(page.locator("#session")).to_be_hidden()
    assert calls == [], "no API call before sign-in"

    # The script tag as Clerk documents it: from the key's Frontend API host, pinned major, the key attribute.
    (script_url,) = routes.script_requests
    assert urlparse(script_url).netloc == FAPI_HOST
    major = int(CLERK_SCRIPT_PATH.fullmatch(urlparse(script_url).path).group(1))
    assert major == page.evaluate("import('/api.js').then((m) => m.CLERK_JS_MAJOR)")
    tag = page.locator("script[data-clerk-publishable-key]")
    expect(tag).to_have_attribute("data-clerk-publishable-key", key)
    expect(tag).to_have_attribute("crossorigin", "anonymous")
    record = standin(page)
    assert record["publishableKey"] == key and record["loadCalls"] == 1 and record["mounted"] >= 1

    # Sign in through the (stand-in) Clerk component: the app shows the user's email and loads the jobs.
    signin.get_by_label("Email address").fill(EMAIL)
    signin.get_by_role("button", name="Continue").click()
    expect(page.locator("#session")).to_contain_text(f"Signed in as {EMAIL}")
    expect(page.locator("#jobs-empty")).to_be_visible()
    expect(signin).to_be_empty()  # unmounted once signed in

    # A signed-in upload: POST /jobs with the Clerk session token, the file straight to S3, then queued.
    page.locator("#file-input").set_input_files(clip)
    item = page.locator("#jobs > li", has_text=clip.name)
    expect(item.locator(".badge")).to_have_attribute(
        "data-status", re.compile("QUEUED|PROCESSING|COMPLETED"), timeout=60_000
    )
    record = standin(page)
    posts = [c for c in calls if c[:2] == ("POST", "/jobs")]
    assert len(posts) == 1 and posts[0][2] in record["issued"], (posts, record["issued"])
    assert all(c[2] in record["issued"] for c in calls), "every API call carries a Clerk-issued token"
    # getToken() is asked on every request (Clerk caches; the page keeps no token of its own)
    assert record["getTokenCalls"] >= len(calls)
    # The authorizer accepted the Clerk token as this user: the job is in the user's own list.
    mine = requests.get(
        f"{live_stack.url}/jobs", headers={"Authorization": f"Bearer {live_stack.token(EMAIL)}"}, timeout=10
    )
    assert mine.ok and clip.name in [j["filename"] for j in mine.json()["items"]], mine.text

    # Clerk refreshes its token before it expires: the next request must carry the new one.
    old = record["issued"][-1]
    page.evaluate("window.__clerkStandin.expireToken()")
    with page.expect_response(
        lambda r: (
            urlparse(r.url).path == "/jobs"
            and r.request.method == "GET"
            and r.request.headers.get("authorization") != f"Bearer {old}"
        )
    ) as answer:
        page.get_by_role("button", name="Refresh").click()
    record = standin(page)
    new = record["issued"][-1]
    assert new != old and answer.value.request.headers["authorization"] == f"Bearer {new}"
    assert answer.value.status == 200
    # ...and keeps using it (cached): another request asks getToken again, and gets the same token.
    issued = len(record["issued"])
    asked = record["getTokenCalls"]
    with page.expect_request(lambda r: urlparse(r.url).path == "/jobs" and r.method == "GET") as again:
        page.get_by_role("button", name="Refresh").click()
    assert again.value.headers["authorization"] == f"Bearer {new}"
    record = standin(page)
    assert record["getTokenCalls"] > asked and len(record["issued"]) == issued

    # A reload keeps the Clerk session: straight to the app, Clerk's sign-in not mounted.
    page.reload()
    expect(page.locator("#session")).to_contain_text(f"Signed in as {EMAIL}")
    expect(page.locator("#jobs > li", has_text=clip.name)).to_be_visible()
    assert standin(page)["mounted"] == 0

    # Sign out goes through Clerk.signOut() and returns to Clerk's sign-in.
    page.get_by_role("button", name="Sign out").click()
    expect(signin.get_by_role("heading", name=re.compile("Clerk stand-in"))).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("You have signed out.")
    expect(page.locator("#session")).to_be_hidden()
    expect(page.locator("#app")).to_be_hidden()
    record = standin(page)
    assert record["signOuts"] == 1
    before = len(calls)
    page.reload()
    expect(signin.get_by_role("heading", name=re.compile("Clerk stand-in"))).to_be_visible()
    assert len(calls) == before, "signed out: no API calls"

    # Nothing but the stand-in's Frontend API host and the local stack (gateway, emulated S3) was asked.
    assert {urlparse(u).hostname for u in routes.off_origin} <= {FAPI_HOST, "127.0.0.1"}, routes.off_origin
    assert not page.js_errors, page.js_errors


@pytest.mark.parametrize("case", ["no-key", "not-a-key", "script-unreachable"])
def test_clerk_configuration_problems_are_explained(page, live_stack, case):
    """devAuth false and no usable Clerk: the page says what is wrong and offers no sign-in that cannot work."""
    key = {"no-key": "", "not-a-key": "pk_live_bm90IGEgaG9zdA", "script-unreachable": publishable_key(FAPI_HOST)}[case]
    routes = ClerkRoutes(page, live_stack.url, key, serve_script=case != "script-unreachable")
    page.goto(f"{live_stack.url}/")
    notice = page.locator("#notice")
    if case == "script-unreachable":  # a network problem: worth a reload
        expect(notice).to_contain_text(
            f"Sign-in could not load: could not load https://{FAPI_HOST}/npm/@clerk/clerk-js@"
        )
        expect(notice).to_contain_text("reload the page")
    else:  # the deployment's configuration: the operator must fix it
        expect(notice).to_contain_text("Sign-in is not set up on this deployment")
        expect(notice).to_contain_text("no clerkPublishableKey" if case == "no-key" else "not a Clerk publishable key")
        expect(notice).to_contain_text("hark:clerkPublishableKey")
    expect(page.locator("#signin-form")).to_be_hidden()
    expect(page.locator("#app")).to_be_hidden()
    assert len(routes.script_requests) == (1 if case == "script-unreachable" else 0)
    assert not page.js_errors, page.js_errors
