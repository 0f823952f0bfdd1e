"""The console in a real browser (Debian's chromium through Playwright) against the real stack: a
reviewer signs in, finds the scan's finding in the queue, sees its evidence images load, dismisses it
with a reason (gone from the queue, the audit row stored, the webhook received); the rights holder
sees the likeness, the finding and the dismissed look-alike; the reviewer then confirms it after all,
and the owner makes the confirmed appearance a reference and changes the likeness's settings; another
rights holder registers a likeness (each reference's verdict shown); another platform or rights
holder gets 404; a POST without the CSRF token gets 403; signing out, and revoking the key, end the
session.

LIKENESS_CONSOLE_SCREENSHOTS=<folder> also saves the main pages as PNGs (docs/console/)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gallery.store import GalleryStore
from samples.photos import package_photo
from samples.services import wait_for
from tests.console.conftest import chromium, finding_of
from workers.data.db import Database
from workers.data.keys import KeyStore
from workers.data.reviews import ReviewStore

SHOTS = os.environ.get("LIKENESS_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium()), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _signed_in(browser: Browser, url: str, key: str, shot: str | None = None) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/console/")
    expect(page).to_have_url(f"{url}/console/sign-in")
    if shot:
        _shot(page, shot)
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_visible()
    return page


def _images_loaded(page: Page) -> int:
    images = page.locator(".evidence img")
    expect(images.first).to_be_visible()
    page.wait_for_function("[...document.querySelectorAll('.evidence img')].every(i => i.complete)")
    return page.evaluate("[...document.querySelectorAll('.evidence img')].filter(i => i.naturalWidth > 0).length")


def test_review_and_rights_holder_flows(console_stack, browser):
    env = console_stack
    url = env.url
    finding_id = finding_of(env, "user-17")["id"]

    # A wrong key is refused on the sign-in page; the platform's key opens its queue.
    page = browser.new_context().new_page()
    page.goto(f"{url}/console/queue")
    expect(page).to_have_url(f"{url}/console/sign-in")
    page.fill("#api_key", "lk_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("not valid")
    page.context.close()

    tube = _signed_in(browser, url, env.keys["tube"], shot="sign-in")
    expect(tube).to_have_url(f"{url}/console/queue")
    row = tube.locator(f"#queue tr[data-finding='{finding_id}']")
    expect(row).to_contain_text("Yao Ming")
    expect(row).to_contain_text("user-17")
    _shot(tube, "queue")
    tube.select_option("select[name=category]", "impersonation")  # none of those: the filter empties it
    tube.click(".filters button")
    expect(tube.locator(".empty")).to_be_visible()
    tube.goto(f"{url}/console/queue?uploader=user-17")
    tube.locator(f"#queue tr[data-finding='{finding_id}'] a").click()

    # The finding: the scan's facts, its appearances, the evidence images (loaded through the console).
    expect(tube).to_have_url(f"{url}/console/findings/{finding_id}")
    expect(tube.locator("h1")).to_contain_text("Yao Ming")
    expect(tube.locator("dl.facts").first).to_contain_text("interview.mp4")
    expect(tube.locator("#appearances tbody tr")).to_have_count(1)
    expect(tube.locator("#signals tbody tr").first).to_be_visible()
    # The uploader as an account (GET /v1/uploaders/{id}): one scan kept, no recommendation yet.
    account = tube.request.get(f"{url}/v1/uploaders/user-17", headers={"X-API-Key": env.keys["tube"]}).json()
    expect(tube.locator("#account h2")).to_contain_text("user-17")
    expect(tube.locator("#recommendation")).to_have_text(account["recommendation"]["action"].replace("_", " "))
    assert account["recent"]["scans"] == 1 and account["recent"]["portrait_rights"] == 1
    assert _images_loaded(tube) >= 1
    _shot(tube, "finding")

    # A POST without (or with a wrong) CSRF token is refused, and stores nothing.
    form = {"decision": "dismissed", "reason": "not_this_person", "comment": "forged"}
    assert tube.request.post(f"{url}/console/findings/{finding_id}/decision", form=form).status == 403
    assert tube.request.post(f"{url}/console/findings/{finding_id}/decision",
                             form={**form, "csrf_token": "guessed"}).status == 403
    reviews = ReviewStore(Database.open(env.stack.database_url))
    assert reviews.history(finding_id) == []

    # Dismiss, with a reason and a comment: recorded, out of the queue, the webhook sent.
    dismiss = tube.locator("form.decide-dismissed")
    dismiss.locator("select[name=reason]").select_option("not_this_person")
    dismiss.locator("textarea[name=comment]").fill("Looks like him, but it is a different player.")
    dismiss.locator("button").click()
    expect(tube.locator(".notice")).to_contain_text("Decision recorded")
    expect(tube.locator("#current-decision")).to_contain_text("Dismissed")
    [audit] = reviews.history(finding_id)
    assert (audit.decision, audit.reason, audit.decided_by, audit.comment) == (
        "dismissed", "not_this_person", "tube", "Looks like him, but it is a different player.")
    tube.goto(f"{url}/console/queue")
    expect(tube.locator(f"#queue tr[data-finding='{finding_id}']")).to_have_count(0)
    call = wait_for(lambda: next((c for c in env.hooks.calls if c["event"]["event"] == "finding.decided"
                                  and c["event"]["finding_id"] == finding_id), None), 60, "finding.decided")
    assert (call["event"]["decision"], call["event"]["uploader"]) == ("dismissed", "user-17")

    # Another platform and another rights holder see nothing of it: 404, pages and images alike.
    other = _signed_in(browser, url, env.keys["othertube"])
    for path in (f"/console/findings/{finding_id}", f"/console/findings/{finding_id}/evidence/0"):
        assert other.goto(f"{url}{path}").status == 404
    expect(other.locator("#queue")).to_have_count(0)
    studio = _signed_in(browser, url, env.keys["studio"])
    assert studio.goto(f"{url}/console/findings/{finding_id}").status == 404
    assert studio.goto(f"{url}/console/likenesses/{env.yao_id}").status == 404
    assert tube.goto(f"{url}/console/likenesses").status == 404  # a platform has no likenesses pages

    # The rights holder: the likeness, the finding with its evidence, the dismissed look-alike.
    nba = _signed_in(browser, url, env.keys["nba"])
    expect(nba).to_have_url(f"{url}/console/likenesses")
    expect(nba.locator("#likenesses")).to_contain_text("Yao Ming")
    _shot(nba, "likenesses")
    nba.goto(f"{url}/console/findings")
    expect(nba.locator(f"#findings tr[data-finding='{finding_id}']")).to_contain_text("dismissed")
    _shot(nba, "findings")
    nba.goto(f"{url}/console/findings/{finding_id}")
    assert _images_loaded(nba) >= 1
    expect(nba.locator("form.decide")).to_have_count(0)  # owners see the decision, do not make it
    expect(nba.locator("dl.facts").first).not_to_contain_text("interview.mp4")  # the report stays the platform's
    nba.goto(f"{url}/console/lookalikes")
    expect(nba.locator("#lookalikes")).to_contain_text("a different player")
    _shot(nba, "lookalikes")

    # The reviewer changes its mind (appended to the audit trail); the owner then makes the confirmed
    # appearance a reference of the likeness, through the enrollment job and its checks.
    tube.goto(f"{url}/console/findings/{finding_id}")
    confirm = tube.locator("form.decide-confirmed")
    confirm.locator("select[name=reason]").select_option("unauthorised_use")
    confirm.locator("textarea[name=comment]").fill("Second look: it is him, and not his account.")
    confirm.locator("button").click()
    expect(tube.locator("#history tbody tr")).to_have_count(2)
    expect(tube.locator("#current-decision")).to_contain_text("Confirmed")
    references = {info.id: n for info, n in GalleryStore.open(env.stack.database_url).identities("nba")}[env.yao_id]
    nba.goto(f"{url}/console/findings/{finding_id}")
    _shot(nba, "finding-owner")
    nba.locator("form.use-reference button").first.click()
    expect(nba).to_have_url(re.compile(r".*/console/registrations/[0-9a-f]+$"))
    expect(nba.locator("#status")).to_have_text("done", timeout=120_000)
    expect(nba.locator("#added")).to_contain_text("1 reference(s) added")
    assert {info.id: n for info, n in GalleryStore.open(env.stack.database_url).identities("nba")}[env.yao_id] \
        == references + 1

    # The owner changes the likeness's authorised uploaders and threshold (the API's checks apply).
    nba.goto(f"{url}/console/likenesses/{env.yao_id}")
    nba.fill("#uploaders", "user-17")
    nba.click("#settings button")
    expect(nba.locator("#settings .alert")).to_contain_text("'<platform>:<uploader id>'")
    nba.fill("#uploaders", "tube:yao-official")
    nba.fill("#threshold", "0.45")
    nba.click("#settings button")
    expect(nba.locator("#settings .notice")).to_contain_text("Saved")
    info = GalleryStore.open(env.stack.database_url).identity(env.yao_id)
    assert (list(info.authorized_uploaders), info.match_threshold) == (["tube:yao-official"], 0.45)
    _shot(nba, "likeness")

    # Registration in the browser: one photo accepted, a group photo refused with its reason.
    studio.goto(f"{url}/console/likenesses/new")
    studio.fill("#name", "Grace Hopper")
    studio.set_input_files("#files", [str(package_photo("grace_hopper.jpg")), str(package_photo("players.jpg"))])
    _shot(studio, "register")
    studio.click("main form button[type=submit]")
    expect(studio).to_have_url(re.compile(r".*/console/registrations/[0-9a-f]+$"))
    expect(studio.locator("#status")).to_have_text("done", timeout=120_000)
    expect(studio.locator(".references")).to_contain_text("grace_hopper.jpg")
    expect(studio.locator(".references tr", has_text="players.jpg")).to_contain_text("refused")
    _shot(studio, "registration")
    studio.click("text=Open the likeness")
    expect(studio.locator("dl.facts")).to_contain_text("1")

    # A character, played by the owner's registered person: registered from the console too.
    nba.goto(f"{url}/console/likenesses/new")
    nba.fill("#name", "The Great Wall")
    nba.select_option("#kind", "character")
    nba.select_option("#played_by", label="Yao Ming")
    nba.set_input_files("#files", [str(package_photo("yaoming.jpg"))])
    nba.click("main form button[type=submit]")
    expect(nba).to_have_url(re.compile(r".*/console/registrations/[0-9a-f]+$"))
    expect(nba.locator("#status")).to_have_text("done", timeout=120_000)
    expect(nba.locator(".references")).to_contain_text("yaoming.jpg")
    nba.click("text=Open the likeness")
    expect(nba.locator("dl.facts")).to_contain_text("character")
    gallery = GalleryStore.open(env.stack.database_url)
    (character,) = [info for info, _ in gallery.identities("nba") if info.name == "The Great Wall"]
    assert character.kind == "character" and gallery.cast_names(character.id) == {"Yao Ming"}

    # Signing out ends the session; so does revoking the key behind one.
    tube.goto(f"{url}/console/queue")
    tube.click("text=Sign out")
    expect(tube).to_have_url(f"{url}/console/sign-in")
    tube.goto(f"{url}/console/queue")
    expect(tube).to_have_url(f"{url}/console/sign-in")
    keys = KeyStore(Database.open(env.stack.database_url))
    second = keys.issue("rights_holder", "nba", "console test")
    revoked = _signed_in(browser, url, second.key)
    keys.revoke(second.id)
    revoked.goto(f"{url}/console/likenesses")
    expect(revoked).to_have_url(f"{url}/console/sign-in")
