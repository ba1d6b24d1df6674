"""The Review and Health pages in a real browser (Debian's chromium driven by Playwright): a "not
helpful" answer is reviewed and resolved through the page, with new knowledge for one group; the
Health page draws the monitor's runs. Screenshots at 1280x800 in artifacts/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from groundwork.config import load_settings
from groundwork.evaluate.monitor import run_monitor
from groundwork.kb import KnowledgeBase
from groundwork.state.monitor import query_summary
from tests.serve.server import Server, create_key
from tests.serve.test_web import ARTIFACTS, CHROMIUM, browser, sign_in  # noqa: F401 - browser is a fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium (`make install` installs it)"
    ),
]
PARKING = "# Parking\n\nVisitors park in the north car park, next to the main entrance.\n"
CANTEEN = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"
QUESTION = "What is the guest wifi password?"
KNOWLEDGE = "The guest wifi network is Lobby; its password is Kestrel-4821."


def _traffic(kb: KnowledgeBase) -> None:
    """40 audit records with real embeddings: parking questions, then canteen ones (a change of topic)."""
    qs = [
        f"Where can {w} park {t}?"
        for w in ("visitors", "staff", "guests", "vans")
        for t in ("today", "now", "at night", "on Monday", "later")
    ]
    qs += [
        f"When is {m} served {t}?"
        for m in ("lunch", "food", "soup", "coffee")
        for t in ("today", "now", "on Friday", "this week", "later")
    ]
    vectors, docs = kb.embedder.embed(qs), kb.embedder.embed([PARKING, CANTEEN])
    for i, (q, v) in enumerate(zip(qs, vectors, strict=True)):
        kb.audit.write({"answer_id": f"t{i:02d}", "created_at": f"2026-01-01T00:00:{i:02d}", "caller": "traffic",
                        "tenant": None, "access_groups": None, "question": q, "abstained": i % 7 == 0,
                        "top1_score": float((docs @ v).max()), "query_summary": query_summary(v)})  # fmt: skip


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ops")
    corpus = root / "docs"
    corpus.mkdir()
    (corpus / "parking.md").write_text(PARKING)
    (corpus / "canteen.md").write_text(CANTEEN)
    kb_dir = root / "kb"
    gold = root / "gold.jsonl"
    rows = [{"live": True}, {"id": "g1", "question": "Where do visitors park?", "sources": [str(corpus / "parking.md")]},
            {"id": "g2", "question": "When is lunch served?", "sources": [str(corpus / "canteen.md")]}]  # fmt: skip
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = load_settings(
        kb=kb_dir, **{"monitor.eval_set": str(gold), "monitor.window": 20, "monitor.reference": 20}
    )
    kb = KnowledgeBase(settings=settings)
    kb.ingest([corpus], allowed_groups=["hr", "eng"])
    run_monitor(kb, settings.monitor)  # the baseline, before any traffic
    _traffic(kb)
    kb.delete([str(corpus / "canteen.md")])  # g2 loses its answer: a regression
    run_monitor(kb, settings.monitor)
    keys = {
        "admin": create_key(kb_dir, "ops", "query,ingest,admin", groups="hr"),
        "hr": create_key(kb_dir, "hr-reader", "query", groups="hr"),
        "eng": create_key(kb_dir, "eng-reader", "query", groups="eng"),
    }
    srv = Server(kb_dir).start()
    yield srv, keys
    srv.stop()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop-1280x800.png"), full_page=False)


def test_a_not_helpful_answer_is_resolved_through_the_review_page(ops, browser) -> None:  # noqa: F811
    srv, keys = ops
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, srv.url, keys["admin"])
    page.get_by_label("Your question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    item = page.locator(".msg.assistant").last
    item.locator(".feedback").wait_for(timeout=180_000)  # the stream finished (a first answer loads the index)
    item.get_by_placeholder("Optional comment").fill("it does not give the password")
    item.get_by_role("button", name="Not helpful").click()
    page.get_by_text("Thanks, your feedback was recorded.").wait_for()

    page.get_by_role("link", name="Review", exact=True).click()
    row = page.locator("#review-table tbody tr", has_text=QUESTION)
    row.get_by_text("it does not give the password").wait_for()
    shoot(page, "review-list")
    row.get_by_role("link", name=f"Review: {QUESTION}").click()
    page.locator("#review-question").get_by_text(QUESTION).wait_for()
    assert page.locator("#review-groups").input_value() == "hr"  # the asker's groups the reviewer may write
    page.get_by_label("Correct answer").fill("Kestrel-4821")
    page.get_by_label("Title").fill("Guest wifi")
    page.get_by_label("Text", exact=True).fill(KNOWLEDGE)
    shoot(page, "review-detail")
    page.get_by_role("button", name="Resolve").click()
    page.get_by_text("Resolved: added to the eval set as review-").wait_for(timeout=60_000)
    assert "new document review://~/hr/" in page.locator("#review-result").inner_text()
    shoot(page, "review-resolved")
    assert page.locator("#review-table tbody tr", has_text=QUESTION).count() == 0  # no longer open

    for who, sees in (("hr", True), ("eng", False)):
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {keys[who]}"}, timeout=60) as c:
            answer = c.post("/v1/answer", json={"question": QUESTION}).json()
        assert ("Kestrel-4821" in json.dumps(answer)) is sees


def test_the_health_page_draws_the_monitor_runs(ops, browser) -> None:  # noqa: F811
    srv, keys = ops
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, srv.url, keys["admin"])
    page.get_by_role("link", name="Health").click()
    status = page.locator("#health-status")
    status.wait_for()
    assert "Alert" in status.inner_text() and "recall@10 regressed" in status.inner_text()
    assert "embedding_psi drifted" in status.inner_text()  # parking questions, then canteen ones
    table = page.locator("#health-table")
    assert "0.5000" in table.locator("tr", has_text="recall@10").inner_text()  # now 0.5, baseline 1.0
    figures = page.locator("#health-body figure")
    assert figures.count() == 3
    assert page.locator("#health-body polyline").count() >= 4  # eval metrics over time, PSI over time
    assert page.locator("#health-body rect.bar-ref").count() >= 10  # the reference window's histogram
    shoot(page, "health")
    page.locator("#health-body .charts").scroll_into_view_if_needed()
    shoot(page, "health-charts")
