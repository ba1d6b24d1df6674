"""The web page in a real browser (Debian's chromium driven by Playwright): upload, streamed answer,
citations, feedback, audit, delete; ACL on every page; screenshots of each page at two sizes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.serve.server import Server, create_key

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium (`make install` installs it)"
    ),
]
ARTIFACTS = (
    Path(os.environ.get("GROUNDWORK_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")) / "screenshots"
)
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

PARKING = "# Parking\n\nVisitors park in the north car park, next to the main entrance. Staff use the south garage.\n"
CANTEEN = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("web")
    evals = root / "eval"
    evals.mkdir()
    (evals / "compare.json").write_text(
        json.dumps(
            {
                "bm25": {
                    "ndcg@10": 0.67,
                    "hits@10": 0.87,
                    "mrr@10": 0.60,
                    "per_type": {"comparison_query": {"hits@10": 0.91}, "temporal_query": {"hits@10": 0.77}},
                },
                "hybrid": {
                    "ndcg@10": 0.68,
                    "hits@10": 0.86,
                    "mrr@10": 0.61,
                    "per_type": {"comparison_query": {"hits@10": 0.88}, "temporal_query": {"hits@10": 0.77}},
                },
            }
        )
    )
    kb = root / "kb"
    keys = {
        "admin": create_key(kb, "ops", "query,ingest,admin"),
        "hr": create_key(kb, "hr-reader", "query", groups="hr"),
    }
    srv = Server(kb, env={"GROUNDWORK_SERVE__EVAL_DIR": str(evals)}).start()
    yield srv, keys, root
    srv.stop()


def sign_in(page, url: str, key: str) -> None:
    page.goto(url + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Your question").wait_for()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(150)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{size}-{w}x{h}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})


def drop_files(page, files: dict[str, str]) -> None:
    """A real drop event on the drop zone, carrying File objects in a DataTransfer."""
    page.evaluate(
        """(files) => {
        const dt = new DataTransfer();
        for (const [name, text] of Object.entries(files)) dt.items.add(new File([text], name, {type: "text/markdown"}));
        const zone = document.querySelector('#dropzone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""",
        files,
    )


def test_upload_ask_cite_feedback_audit_delete(web, browser) -> None:
    srv, keys, _ = web
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("dialog", lambda d: d.accept())
    page.goto(srv.url + "/")
    shoot(page, "signin")
    sign_in(page, srv.url, keys["admin"])

    page.get_by_role("link", name="Documents").click()
    drop_files(page, {"parking.md": PARKING, "canteen.md": CANTEEN})
    page.get_by_text("Finished", exact=True).wait_for(timeout=120_000)
    page.get_by_text("parking.md: added").wait_for()
    page.get_by_text("canteen.md: added").wait_for()
    expect(page.locator("#doc-table tbody tr")).to_have_count(2)
    page.get_by_role("link", name="parking.md").click()
    page.locator("#doc-chunks").get_by_text("north car park").wait_for()
    shoot(page, "documents")

    page.get_by_role("link", name="Chat").click()
    page.get_by_label("Your question").fill("Where do visitors park?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator(".msg.assistant .answer-text").last
    answer.get_by_text("north car park").wait_for(timeout=60_000)
    page.locator(".msg.assistant .feedback").last.wait_for()  # the stream finished
    cite = page.locator(".msg.assistant button.cite").first
    assert cite.inner_text() == "[1]"
    cite.click()
    panel = page.locator("#citation-panel")
    assert panel.is_visible() and panel.locator("#citation-title").inner_text() == "parking.md"
    assert "north car park" in panel.locator("mark").inner_text()  # the supporting sentence is highlighted
    assert "Parking" in panel.locator("#citation-where").inner_text()
    page.get_by_placeholder("Optional comment").last.fill("clear and cited")
    page.get_by_role("button", name="Helpful", exact=True).last.click()
    page.get_by_text("Thanks, your feedback was recorded.").wait_for()
    shoot(page, "chat")

    # a follow-up keeps the conversation
    page.get_by_label("Your question").fill("And staff?")
    page.get_by_role("button", name="Ask").click()
    page.locator(".msg.assistant").nth(1).get_by_text("south garage").wait_for(timeout=60_000)

    page.get_by_role("link", name="Audit").click()
    row = page.locator("#audit-table tbody tr", has_text="Where do visitors park?")
    row.get_by_text("clear and cited").wait_for()
    row.get_by_role("link", name="Details").click()
    page.locator("#audit-fields").get_by_text("parking.md").first.wait_for()
    shoot(page, "audit")

    page.get_by_role("link", name="Versions").click()
    page.locator("#version-table tbody tr").first.wait_for()
    shoot(page, "versions")
    page.get_by_role("link", name="Evaluation").click()
    page.locator("#eval-results table").first.wait_for()
    assert page.locator("#eval-results svg").count() >= 3  # metric per configuration, per question type
    shoot(page, "evaluation")

    page.get_by_role("link", name="Documents").click()
    page.get_by_role("button", name="Delete parking.md").click()
    page.get_by_text("parking.md was deleted.").wait_for()
    expect(page.locator("#doc-table tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Chat").click()
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Your question").fill("Where do visitors park?")
    page.get_by_role("button", name="Ask").click()
    last = page.locator(".msg.assistant").last
    last.locator(".feedback").wait_for(timeout=60_000)
    assert "north car park" not in last.inner_text()
    assert last.locator("button.cite[aria-label*='parking.md']").count() == 0  # no citation of the deleted file


def test_group_key_sees_only_its_groups_documents_on_every_page(web, browser) -> None:
    srv, keys, root = web
    import httpx

    admin = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=60)
    from tests.serve.server import wait_job

    for name, group, text in [
        ("hr-pay.md", "hr", "Salaries are paid on the 25th. Marker HRONLY."),
        ("eng-oncall.md", "eng", "Engineers on call are paid a bonus. Marker ENGONLY."),
    ]:
        r = admin.post(
            "/v1/documents",
            files=[("files", (name, f"# Pay\n\n{text}\n".encode(), "text/markdown"))],
            data={"allowed_groups": group},
        )
        assert wait_job(admin, r.json()["job_id"])["status"] == "done"
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, srv.url, keys["hr"])
    assert page.get_by_role("link", name="Audit").is_hidden() and page.get_by_role("link", name="Documents").is_hidden()
    page.get_by_label("Your question").fill("How is pay handled for staff?")
    page.get_by_role("button", name="Ask").click()
    page.locator(".msg.assistant .feedback").last.wait_for(timeout=60_000)
    options = page.eval_on_selector_all("#filter-source option", "els => els.map(e => e.textContent)")
    assert "hr-pay.md" in options and "eng-oncall.md" not in options
    seen = {"chat": page.content()}
    for name in ("documents", "versions", "eval", "audit"):
        page.goto(f"{srv.url}/#/{name}")
        page.wait_for_timeout(800)
        seen[name] = page.content()
    shoot(page, "group-key-documents")
    for name, html in seen.items():
        assert "ENGONLY" not in html and "eng-oncall" not in html, f"another group's document appeared on {name}"
    assert "HRONLY" in seen["chat"] or "25th" in seen["chat"]
    assert re.search(r"hr-pay\.md", seen["documents"])
