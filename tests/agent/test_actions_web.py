"""The pending-actions page in Debian's chromium: a person confirms one proposed action (it runs once,
against the local endpoint) and rejects another (it never runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.agent.test_agent_flow import propose
from tests.serve.test_web import ARTIFACTS, CHROMIUM, browser, sign_in  # noqa: F401 - browser is a fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def test_confirm_and_reject_on_the_web_page(agent_env, browser) -> None:  # noqa: F811
    env, calls = agent_env, agent_env["endpoint"].calls
    confirm = propose(env).model_extra["pending_actions"][0]
    reject = propose(env).model_extra["pending_actions"][0]
    before = len(calls)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, env["srv"].url, env["keys"]["acme"])
    page.goto(f"{env['srv'].url}/#/actions")
    page.locator("#actions-table tbody tr", has_text="create_ticket").first.wait_for()
    page.get_by_role("button", name=f"Confirm create_ticket {confirm['id']}").click()
    page.get_by_text("create_ticket: done").wait_for()
    assert len(calls) == before + 1
    page.get_by_role("button", name=f"Reject create_ticket {reject['id']}").click()
    page.get_by_text("create_ticket: rejected").wait_for()
    expect(page.get_by_role("button", name=f"Confirm create_ticket {confirm['id']}")).to_have_count(0)
    expect(page.get_by_role("button", name=f"Confirm create_ticket {reject['id']}")).to_have_count(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "actions-desktop-1280x800.png"))
    assert len(calls) == before + 1  # the rejected one never ran
