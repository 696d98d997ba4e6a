"""The console's main flows in a real browser (Debian's chromium, driven by playwright).

Run by tests/console.rs against a real `strongroom serve` it seeded; everything it needs comes
from the environment. Each flow is what an on-call operator does: sign in, look a user up by
id, export, erase with a typed confirmation, rotate and retire keys, create and revoke a token,
search the audit log, watch a refresh failure appear, manage a webhook, try the API from the
reference. Along the way: no console error, no CSP violation, no request to another origin, no
token in a URL, a cookie or local storage. A screenshot of each page goes to SCREENSHOTS.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

BASE = os.environ["STRONGROOM_URL"]
ADMIN = os.environ["ADMIN_TOKEN"]
READER = os.environ["READER_TOKEN"]
NS = os.environ["NAMESPACE"]
USER = os.environ["SEEDED_USER"]
FAILING = os.environ["FAILING_CREDENTIAL"]
HOOK_URL = os.environ["HOOK_URL"]
FILE_TEXT = os.environ["FILE_TEXT"]
SHOTS = Path(os.environ["SCREENSHOTS"])
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

expect.set_options(timeout=15_000)
problems: list[str] = []


def api(method: str, path: str, token: str = ADMIN, body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text else None


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def watch(page: Page) -> None:
    """Records what must never happen on any page."""
    # The browser logs every HTTP error answer as a console error; the flows provoke some on
    # purpose (a wrong token, a failing refresh). Anything else logged as an error is a problem,
    # and so is any console file or page that is not found.
    expected = "Failed to load resource: the server responded with a status of"
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}")
        if m.type == "error" and not m.text.startswith(expected)
        else None,
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} for {r.url}")
        if r.status == 404 and not r.url.startswith(BASE + "/v1/")
        else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: None
        if r.url.startswith(BASE) or r.url.startswith("blob:") or r.url.startswith("data:")
        else problems.append(f"request to another origin: {r.url}"),
    )
    page.on("framenavigated", lambda f: problems.append("a token in a URL") if ADMIN in f.url or READER in f.url else None)


def sign_in(page: Page, token: str) -> None:
    page.goto(BASE + "/ui")
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Pages").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def flow_sign_in_and_overview(page: Page) -> None:
    page.goto(BASE + "/ui")
    page.get_by_label("API token", exact=True).fill("sr_0000000000000000_not-a-real-token-at-all-00000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("unauthenticated")
    shot(page, "sign-in")
    sign_in(page, ADMIN)
    expect(page.get_by_text("unsealed")).to_be_visible()
    expect(page.get_by_text("ready", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Background jobs")).to_contain_text("oauth-refresh")
    expect(page.get_by_role("table", name="Namespaces")).to_contain_text(NS)
    shot(page, "overview")


def flow_user_lookup_export_files(page: Page) -> None:
    nav(page, "Users")
    page.get_by_label("User id", exact=True).fill(USER)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("table", name="Credentials")).to_contain_text("spotify")
    expect(page.get_by_role("table", name="Records in profile")).to_contain_text("main")
    expect(page.get_by_role("table", name="Recent events")).to_contain_text("login")
    expect(page.get_by_role("table", name="Files")).to_contain_text("notes.txt")
    shot(page, "user")
    with page.expect_download() as got:
        page.get_by_role("button", name="Download notes.txt").click()
    assert Path(got.value.path()).read_text() == FILE_TEXT, "downloaded file differs"
    with page.expect_download() as got:
        page.get_by_role("button", name="Export as JSON").click()
    exported = json.loads(Path(got.value.path()).read_text())
    assert exported["user"] == USER and exported["namespace"] == NS, exported.keys()
    assert any(c["name"] == "spotify" for c in exported["credentials"])
    page.get_by_role("button", name="Signed link for notes.txt").click()
    link = page.get_by_label("Signed link", exact=True).input_value()
    with urllib.request.urlopen(link) as r:
        assert r.read().decode() == FILE_TEXT, "the signed link serves another file"


def flow_refresh_failure_appears(page: Page) -> None:
    nav(page, "OAuth")
    page.get_by_label("Show", exact=True).select_option("refresh_failed")
    board = page.get_by_role("table", name="Credential status")
    # The refresher job finds the expired token and fails against the dead endpoint.
    for _ in range(30):
        if board.count() and FAILING in board.inner_text():
            break
        page.wait_for_timeout(1000)
        page.reload()
        board = page.get_by_role("table", name="Credential status")
    expect(board).to_contain_text(FAILING)
    expect(board).to_contain_text("refresh_failed")
    shot(page, "oauth")
    page.get_by_role("button", name=f"Force refresh {FAILING}", exact=False).first.click()
    expect(page.get_by_role("alert").filter(has_text="refresh_failed")).to_be_visible()
    nav(page, "Overview")
    counter = page.locator(".counter", has_text="OAuth refresh failures")
    expect(counter).not_to_contain_text(re.compile(r"^0"))


def flow_keys(page: Page) -> None:
    nav(page, "Keys")
    expect(page.get_by_test_id("primary-version")).to_have_text("v1")
    page.get_by_role("button", name="Rotate…").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    expect(page.get_by_test_id("primary-version")).to_have_text("v2")
    page.get_by_role("button", name="Rewrap now").click()
    expect(page.get_by_text("every user is on the primary")).to_be_visible()
    page.get_by_role("button", name="Retire older versions…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Retire")).to_be_disabled()
    dialog.get_by_label("Type retire v1-v1 to confirm", exact=True).fill("retire v1-v1")
    dialog.get_by_role("button", name="Retire").click()
    expect(page.get_by_role("table", name="Key versions")).to_contain_text("retired")
    shot(page, "keys")
    status, keys = api("GET", f"/v1/ns/{NS}/keys")
    assert status == 200 and keys["primary_version"] == 2 and keys["min_decrypt_version"] == 2, keys


def flow_tokens(page: Page) -> None:
    nav(page, "Tokens")
    form = page.get_by_role("form", name="Create a token")
    form.get_by_label("Name", exact=True).fill("console-made")
    form.get_by_label("Namespaces", exact=True).fill(NS)
    form.get_by_role("button", name="Create token").click()
    secret = page.get_by_role("textbox", name=re.compile("^Token console-made")).input_value()
    assert secret.startswith("sr_"), "no token shown"
    status, me = api("GET", "/v1/sys/tokens/self", token=secret)
    assert status == 200 and me["policy"]["namespaces"] == [NS], me
    shot(page, "tokens")
    page.get_by_role("button", name="Revoke token console-made").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("table", name="Tokens").locator("tr", has_text="console-made")).to_contain_text("revoked")
    status, _ = api("GET", "/v1/sys/tokens/self", token=secret)
    assert status == 401, f"a revoked token still works ({status})"


def flow_audit(page: Page) -> None:
    nav(page, "Audit")
    search = page.get_by_role("search", name="Search the audit log")
    search.get_by_label("Namespace", exact=True).fill(NS)
    search.get_by_label("User id", exact=True).fill(USER)
    search.get_by_role("button", name="Search").click()
    entries = page.get_by_role("table", name="Audit entries")
    expect(entries).to_contain_text("user.export")
    expect(entries).to_contain_text("file.read")
    assert USER not in entries.inner_text(), "the user id is shown in the audit table"
    shot(page, "audit")
    search.get_by_label("User id", exact=True).fill("")
    search.get_by_label("Outcome", exact=True).select_option("denied")
    search.get_by_role("button", name="Search").click()
    expect(page.get_by_role("table", name="Audit entries")).to_contain_text("denied")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_text("the chain is whole")).to_be_visible()


def flow_webhooks(page: Page) -> None:
    nav(page, "Webhooks")
    page.get_by_role("button", name="Add a webhook").click()
    form = page.get_by_role("form", name="Add a webhook")
    form.get_by_label("Name", exact=True).fill("ops")
    form.get_by_label("URL", exact=True).fill(HOOK_URL)
    form.get_by_label("Events", exact=True).fill("*")
    form.get_by_role("button", name="Add webhook").click()
    secret = page.get_by_role("textbox", name="Signing secret of ops").input_value()
    assert secret.startswith("whsec_"), "no signing secret shown"
    page.get_by_role("link", name="Webhooks", exact=True).first.click()
    page.reload()
    page.get_by_role("button", name="Send a test event to ops").click()
    expect(page.get_by_text(re.compile("Test event evt_"))).to_be_visible()
    page.get_by_role("link", name="ops", exact=True).click()
    deliveries = page.get_by_role("table", name="Deliveries of ops")
    for _ in range(30):
        if deliveries.count() and "delivered" in deliveries.inner_text():
            break
        page.wait_for_timeout(1000)
        page.reload()
        deliveries = page.get_by_role("table", name="Deliveries of ops")
    expect(deliveries).to_contain_text("webhook.test")
    expect(deliveries).to_contain_text("delivered")
    shot(page, "webhooks")
    page.get_by_role("button", name=re.compile("^Redeliver #")).first.click()
    expect(page.get_by_text(re.compile(r"Delivery #\d+ queued again"))).to_be_visible()


def flow_erase(page: Page) -> None:
    nav(page, "Users")
    page.get_by_label("User id", exact=True).fill(USER)
    page.get_by_role("button", name="Look up").click()
    page.get_by_role("button", name="Erase this user…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Erase")).to_be_disabled()
    dialog.get_by_label(f"Type {USER} to confirm", exact=True).fill(USER[:-1])
    expect(dialog.get_by_role("button", name="Erase")).to_be_disabled()
    dialog.get_by_label(f"Type {USER} to confirm", exact=True).fill(USER)
    dialog.get_by_role("button", name="Erase").click()
    expect(page.get_by_text("Nothing of this user is left.")).to_be_visible(timeout=60_000)
    shot(page, "erase")
    status, listed = api("GET", f"/v1/ns/{NS}/users/{USER}/credentials")
    assert status == 200 and listed["items"] == [], listed


def flow_docs(page: Page) -> None:
    page.goto(BASE + "/docs")
    expect(page.get_by_role("heading", name=re.compile("Strongroom API"))).to_be_visible()
    op = page.locator("details.op", has_text="/v1/sys/tokens/self").first
    op.locator("summary").click()
    op.get_by_role("button", name="Send").click()
    expect(op.locator("pre").last).to_contain_text('"id"')
    expect(op).to_contain_text("200")
    shot(page, "docs", full_page=False)


def flow_namespace_token(page: Page) -> None:
    """A read-and-list token sees its namespace, no operator page, no erase or export."""
    page.goto(BASE + "/ui")
    page.get_by_role("button", name="Log out").click()
    sign_in(page, READER)
    links = page.get_by_role("navigation", name="Pages")
    for hidden in ["Tokens", "Audit", "Keys", "Webhooks"]:
        expect(links.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    nav(page, "Users")
    page.get_by_label("User id", exact=True).fill("someone-else")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_text("Erasing needs the erase capability.")).to_be_visible()
    expect(page.get_by_role("button", name="Erase this user…")).to_have_count(0)


def flow_phone(browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    watch(page)
    sign_in(page, ADMIN)
    nav(page, "OAuth")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways on a phone ({width}px)"
    shot(page, "phone-oauth")
    context.close()


def flow_keyboard(page: Page) -> None:
    """Sign-in works from the keyboard alone."""
    page.goto(BASE + "/ui")
    expect(page.get_by_label("API token", exact=True)).to_be_visible()
    seen = []
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if seen[-1] == "token":
            break
    assert seen[-1] == "token", f"focus does not reach the token field: {seen}"
    page.keyboard.type(ADMIN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def main() -> int:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        watch(page)
        flows = [
            flow_sign_in_and_overview,
            flow_user_lookup_export_files,
            flow_refresh_failure_appears,
            flow_keys,
            flow_tokens,
            flow_audit,
            flow_webhooks,
            flow_erase,
            flow_docs,
            flow_namespace_token,
        ]
        for flow in flows:
            print(f"-- {flow.__name__}", flush=True)
            flow(page)
        assert context.cookies() == [], "the console set a cookie"
        assert page.evaluate("localStorage.length") == 0, "the console wrote local storage"
        context.close()
        keyboard = browser.new_context()
        page = keyboard.new_page()
        watch(page)
        print("-- flow_keyboard", flush=True)
        flow_keyboard(page)
        keyboard.close()
        print("-- flow_phone", flush=True)
        flow_phone(browser)
        browser.close()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("console flows passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
