"""The web page in a real browser (Debian's chromium driven by Playwright): upload, streamed answer,
citations and sources, feedback, audit, delete; ACL on every page; what each key is offered; Markdown
of hostile documents rendered inert; --no-auth; the phone layout; screenshots of each page at two sizes."""

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

HEADER_MAX_PX = 100  # the header at 390 px wide, signed in with every page offered (was 180)

PARKING = "# Parking\n\nVisitors park in the north car park, next to the main entrance. Staff use the south garage.\n"
CANTEEN = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"
# A document written as an attack: raw HTML, an inline event handler and javascript: links, each of
# which would set window.__pwned (or trip the Content-Security-Policy) if the page let it through.
HOSTILE = """# Bicycle racks

Cyclists lock their bicycles at the covered racks beside the library entrance.

- racks are lit at night
- racks are checked every **Monday**

<script>window.__pwned = "script"</script>

<img src="/nonexistent.png" onerror="window.__pwned = 'img'">

[Open the rack map](javascript:window.__pwned='link') and <a href="javascript:window.__pwned='html'">raw link</a>
"""
# Records every Content-Security-Policy violation: the sanitiser must stop the attack before the CSP does.
CSP_PROBE = """window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));"""


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
def dev(tmp_path_factory: pytest.TempPathFactory):
    """`groundwork serve --no-auth` with one folder to re-sync (serve.sync_paths)."""
    root = tmp_path_factory.mktemp("dev")
    folder = root / "handbook"
    folder.mkdir()
    (folder / "holidays.md").write_text("# Holidays\n\nThe office closes between Christmas and New Year.\n")
    srv = Server(root / "kb", env={"GROUNDWORK_SERVE__SYNC_PATHS": json.dumps([str(folder)])}, no_auth=True).start()
    yield srv
    srv.stop()


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
        "admin": create_key(kb, "ops", "query,ingest,admin", groups="hr,eng"),  # may restrict to its groups
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


def ask(page, question: str):
    """Asks in the chat and waits for the end of the stream; the answer's list item."""
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").click()
    item = page.locator(".msg.assistant").last
    item.and_(page.locator("[aria-busy=false]")).wait_for(timeout=60_000)
    return item


def upload_as(srv: Server, key: str, name: str, text: str) -> None:
    import httpx

    from tests.serve.server import wait_job

    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as admin:
        r = admin.post("/v1/documents", files=[("files", (name, text.encode(), "text/markdown"))])
        assert wait_job(admin, r.json()["job_id"])["status"] == "done"


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
    # the parsing report: its summary in the table, the whole of it above the document's chunks
    expect(page.locator("#doc-table tbody tr", has_text="parking.md")).to_contain_text(re.compile(r"md · \d+ sections"))
    page.get_by_role("link", name="parking.md").click()
    page.locator("#doc-chunks").get_by_text("north car park").wait_for()
    expect(page.locator("#doc-parse")).to_contain_text(re.compile(r"Parsed as md · \d+ sections · [\d,]+ characters"))
    # serve.sync_paths is empty: there is nothing to re-sync, so no button offers it
    assert page.get_by_role("button", name="Re-sync folders").count() == 0
    assert page.locator("#resync").is_hidden()
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
    # the cited documents are listed under the answer, and each opens its chunk like the [n] button
    last = page.locator(".msg.assistant").last
    sources = last.locator(".sources")
    cited = set(last.locator(".answer-text button.cite").all_inner_texts())
    expect(sources.get_by_role("button")).to_have_count(len(cited))
    first = sources.get_by_role("button").first
    assert first.inner_text() == "[1] parking.md · Parking"
    page.get_by_role("button", name="Close the cited passage").click()
    first.click()
    assert panel.locator("#citation-title").inner_text() == "parking.md"
    assert "north car park" in panel.locator("mark").inner_text()
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
    # a query-only key reaches the documents page through a citation's link: nothing offers an upload
    page.goto(f"{srv.url}/#/documents")
    page.locator("#doc-table tbody tr").first.wait_for()
    assert page.get_by_text("Drop files here").is_hidden() and page.locator("#dropzone").is_hidden()
    assert page.get_by_role("button", name="choose files").count() == 0
    assert page.get_by_label("Visible to groups (optional, comma-separated)").is_hidden()
    assert page.get_by_role("button", name=re.compile("^Delete ")).count() == 0
    shoot(page, "query-key-documents")
    page.goto(f"{srv.url}/#/chat")
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


def test_only_the_sign_in_form_shows_before_sign_in(web, browser) -> None:
    srv, _, _ = web
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(srv.url + "/")
    page.get_by_label("API key").wait_for()
    for name in ("Chat", "Documents", "Versions", "Audit", "Evaluation"):
        assert page.get_by_role("link", name=name).is_hidden(), f"the {name} link shows before sign-in"
    assert page.locator("#nav").is_hidden() and page.get_by_role("button", name="Sign out").is_hidden()


def test_one_file_chooser_and_it_uploads(web, browser) -> None:
    srv, keys, _ = web
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, srv.url, keys["admin"])
    page.get_by_role("link", name="Documents").click()
    page.get_by_text("Drop files here").wait_for()
    assert page.locator("input[type=file]").is_hidden()  # no native "Choose Files" button beside the link
    choosers = page.locator("#upload").get_by_role("button").filter(visible=True)
    assert choosers.all_inner_texts() == ["choose files"]
    with page.expect_file_chooser() as chooser:
        choosers.first.click()
    chooser.value.set_files(
        files=[
            {"name": "library.md", "mimeType": "text/markdown", "buffer": b"# Library\n\nThe library opens at eight.\n"}
        ]
    )
    page.get_by_text("library.md: added").wait_for(timeout=120_000)
    page.get_by_role("link", name="library.md").wait_for()


def test_markdown_is_rendered_and_a_hostile_document_is_inert(web, browser) -> None:
    srv, keys, _ = web
    upload_as(srv, keys["admin"], "racks.md", HOSTILE)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.add_init_script(CSP_PROBE)
    sign_in(page, srv.url, keys["admin"])

    item = ask(page, "Where do cyclists lock their bicycles?")
    item.get_by_role("button", name=re.compile("racks.md")).first.click()
    panel = page.locator("#citation-text")
    expect(panel.get_by_role("heading", name="Bicycle racks")).to_be_visible()
    expect(panel.locator("li")).to_have_count(2)
    expect(panel.locator("li strong")).to_have_text("Monday")
    assert "library entrance" in " ".join(panel.locator("mark").all_inner_texts())
    assert "###" not in panel.inner_text() and "- racks" not in panel.inner_text()
    assert_inert(page, panel)
    panel.get_by_text("Open the rack map").click()
    shoot(page, "citation-markdown")

    page.goto(f"{srv.url}/#/documents")
    page.get_by_role("link", name="racks.md").click()
    chunks = page.locator("#doc-chunks")
    expect(chunks.get_by_role("heading", name="Bicycle racks")).to_be_visible()
    expect(chunks.locator(".md li")).to_have_count(2)
    assert_inert(page, chunks)
    chunks.get_by_text("Open the rack map").click()
    shoot(page, "documents-markdown")
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__csp") == []  # nothing reached the browser for the CSP to block


def assert_inert(page, area) -> None:
    """The attack in HOSTILE is shown as text, with no element or link able to run it."""
    assert area.locator("script, img, iframe, object, [onerror], [onclick]").count() == 0
    hrefs = area.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert all(h is None or h.startswith(("http:", "https:", "mailto:", "#")) for h in hrefs), hrefs
    assert '<script>window.__pwned = "script"</script>' in area.inner_text()  # raw HTML is shown, not parsed
    assert page.evaluate("window.__pwned") is None


def test_an_abstention_says_so_once(web, browser) -> None:
    srv, keys, _ = web
    upload_as(srv, keys["admin"], "canteen.md", CANTEEN)  # an index to search, whichever tests ran before
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, srv.url, keys["admin"])
    item = ask(page, "What is the boiling point of mercury in kelvin?")
    expect(item).to_have_class(re.compile("abstained"))
    said = re.findall(r"could not find", item.inner_text(), flags=re.I)
    assert len(said) == 1, item.inner_text()
    assert item.locator(".sources").count() == 0
    shoot(page, "abstention")


def test_the_header_is_short_at_phone_width(web, browser) -> None:
    srv, keys, _ = web
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, srv.url, keys["admin"])
    nav = page.get_by_role("navigation", name="Pages")
    assert nav.get_by_role("link").filter(visible=True).count() == 7  # with Review and Health
    height = page.locator("header").bounding_box()["height"]
    assert height <= HEADER_MAX_PX, f"header {height} px high at 390 px wide"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # and no sideways scrolling
    assert nav.evaluate("n => n.scrollWidth <= n.clientWidth"), "a page link is cut off at the right edge"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-header-phone-390x844.png"))


def test_no_auth_goes_straight_in_and_resyncs(dev, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(dev.url + "/")
    page.get_by_label("Your question").wait_for()
    assert page.get_by_label("API key").is_hidden()
    assert page.locator("#who-name").inner_text() == "dev (no auth)"
    assert page.get_by_role("button", name="Sign out").is_hidden()
    shoot(page, "no-auth-chat")
    page.get_by_role("link", name="Documents").click()
    page.get_by_role("button", name="Re-sync folders").click()  # serve.sync_paths names a folder
    page.get_by_text("Finished", exact=True).wait_for(timeout=120_000)
    assert page.locator("#jobs progress").first.evaluate("bar => bar.value === bar.max")  # a full bar
    page.get_by_role("link", name="holidays.md").wait_for()
    # the run is listed with what it changed (scheduled runs are listed the same way)
    run = page.get_by_role("table", name="Latest syncs of the configured sources").locator("tbody tr").first
    expect(run.locator("td").nth(1)).to_have_text("done")
    expect(run.locator("td").nth(2)).to_have_text("1")  # added
    shoot(page, "no-auth-documents")
