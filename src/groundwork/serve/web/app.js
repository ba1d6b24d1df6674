// Groundwork web page: plain ES module, no build step, no external resources.
// Every call goes to the HTTP API with the signed-in key as a Bearer token, so the page shows exactly
// what the key may see (the server applies the key's scopes and document ACLs). Document text is shown
// through markdown.js only (sanitised); everything else goes in as text nodes, never as HTML.

import { highlight, renderMarkdown } from "/markdown.js";
import { showHealth } from "/health.js";
import { resolveReview, showReviews } from "/review.js";

const $ = (sel) => document.querySelector(sel);
const state = { key: sessionStorage.getItem("gw-key") || "", me: null, messages: [], docOffset: 0, docLimit: 20 };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return el;
}

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
  }
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401) { signOut("Your key was not accepted. Sign in again."); throw new Error("unauthorized"); }
  if (!r.ok) {
    let msg = `Request failed (${r.status}).`;
    try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

const can = (scope) => state.me && (state.me.scopes.includes(scope) || state.me.scopes.includes("admin"));
const fileName = (p) => (p || "").split("/").pop();
const fmtTime = (t) => (t || "").replace("T", " ").replace(/\+00:00$|Z$/, "").slice(0, 19);
const nChunks = (n) => `${n} chunk${n === 1 ? "" : "s"}`;
// what the page modules (review.js, health.js) use of this one
const ctx = { api, h, $, fmtTime, fileName, me: () => state.me };
const fmtSize = (chars) => (chars > 1024 ? `${(chars / 1024).toFixed(1)} k chars` : `${chars} chars`);

// -- sign-in and routing -------------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  const me = await (await api("/v1/me")).json();
  sessionStorage.setItem("gw-key", key);
  enter(me);
}

async function noAuthServer() {
  // `groundwork serve --no-auth` answers /v1/me without a key; any other server answers 401
  try {
    const r = await fetch("/v1/me");
    const me = r.ok ? await r.json() : null;
    return me && me.no_auth ? me : null;
  } catch (_) { return null; }
}

function enter(me) {
  state.me = me;
  $("#who-name").textContent = `${me.name}${me.tenant ? ` (${me.tenant})` : ""}`;
  $("#signout").hidden = me.no_auth; // nothing to sign out of
  $("#who").hidden = false;
  $("#nav").hidden = false;
  document.querySelectorAll("[data-scope]").forEach((el) => { el.hidden = !can(el.dataset.scope); });
  $("#resync").hidden = !(can("admin") && me.sync_configured); // nothing to re-sync without serve.sync_paths or serve.sources
}

function signOut(message = "") {
  sessionStorage.removeItem("gw-key");
  Object.assign(state, { key: "", me: null, messages: [] });
  $("#who").hidden = true;
  $("#nav").hidden = true;
  $("#signin-error").textContent = message;
  go("#/signin");
}

function go(hash) {
  // a new hash routes through the hashchange event; routing here as well would render the page twice
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  const [, page, ...rest] = (location.hash || "#/chat").split("/");
  const name = state.me ? (page || "chat") : "signin";
  document.querySelectorAll(".page").forEach((s) => { s.hidden = s.id !== `page-${name}`; });
  document.querySelectorAll("#nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.page === name ? "page" : "false"));
  const show = { chat: showChat, documents: () => showDocuments(rest.join("/")), versions: showVersions, audit: () => showAudit(rest.join("/")), eval: showEval,
    reviews: () => showReviews(ctx, rest.join("/")), health: () => showHealth(ctx), actions: showActions }[name];
  if (show) show().catch((e) => toast(e.message));
}

function toast(msg) {
  const t = h("div", { class: "toast", role: "alert" }, msg);
  document.body.append(t);
  setTimeout(() => t.remove(), 6000);
}

// -- chat -------------------------------------------------------------------------------------------
async function showChat() {
  const sel = $("#filter-source");
  if (sel.options.length <= 1) {
    const docs = await (await api("/v1/documents?limit=500")).json();
    for (const d of docs.items) sel.append(h("option", { value: d.source }, fileName(d.source)));
  }
  $("#question").focus();
}

function currentFilter() {
  const parts = [];
  const src = $("#filter-source").value;
  if (src) parts.push(`source = '${src.replaceAll("'", "''")}'`);
  const expr = $("#filter-expr").value.trim();
  if (expr) parts.push(`(${expr})`);
  return parts.length ? parts.join(" AND ") : null;
}

function renderAnswer(container, text, citations) {
  container.replaceChildren();
  const byN = new Map((citations || []).map((c) => [c.n, c]));
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    container.append(text.slice(last, m.index));
    const c = byN.get(Number(m[1]));
    if (c) {
      const before = text.slice(0, m.index);
      container.append(h("button", { type: "button", class: "cite", "aria-label": `Show source ${m[1]}: ${fileName(c.source)}`,
        onclick: () => openCitation(c, before) }, `[${m[1]}]`));
    } else container.append(m[0]);
    last = m.index + m[0].length;
  }
  container.append(text.slice(last));
}

function supportingSentence(answerBefore) {
  // the sentence the marker closes: text after the previous marker or sentence end
  const cleaned = answerBefore.replace(/\[\d+\]/g, "").trim();
  const parts = cleaned.split(/(?<=[.!?])\s+/);
  return (parts[parts.length - 1] || "").trim();
}

// What a chunk's page counts, by its document's file type (an e-mail attachment's id names the attachment).
const PAGE_UNITS = { pptx: "slide", xlsx: "row", csv: "row", tsv: "row" };
const suffixOf = (name) => { const last = (name || "").split("/").pop(); return last.includes(".") ? last.split(".").pop().toLowerCase() : ""; };
function pageWord(c, doc) {
  const unit = PAGE_UNITS[suffixOf(doc.doc_id)] || PAGE_UNITS[suffixOf(doc.source)] || "page";
  if (unit === "row" && /(^| > )rows \d/.test(c.heading || "")) return "";  // a group of rows: its heading says which
  return `${unit} ${c.page}`;
}
const where = (c, doc = c) => [c.heading, c.page ? pageWord(c, doc) : ""].filter(Boolean).join(" · ");

function openCitation(c, answerBefore) {
  $("#citation-title").textContent = fileName(c.source);
  $("#citation-where").textContent = where(c);
  const quote = $("#citation-text");
  quote.replaceChildren(renderMarkdown(c.text));
  highlight(quote, supportingSentence(answerBefore));
  $("#citation-doc").href = `#/documents/${encodeURIComponent(c.doc_id)}`;
  $("#citation-panel").hidden = false;
  $("#close-citation").focus();
}

async function ask(question) {
  const list = $("#messages");
  list.append(h("li", { class: "msg user" }, h("p", {}, question)));
  const body = h("div", { class: "answer-text" });
  const status = h("p", { class: "status" }, "Searching your documents…");
  const item = h("li", { class: "msg assistant", "aria-busy": "true" }, status, body);
  list.append(item);
  state.messages.push({ role: "user", content: question });
  const payload = { model: "groundwork", stream: true, messages: state.messages };
  const filter = currentFilter();
  if (filter) payload.filter = filter;
  let text = "", final = null;
  try {
    const r = await api("/v1/chat/completions", { method: "POST", json: payload });
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0].delta || {};
        if (delta.content) { text += delta.content; status.textContent = ""; renderAnswer(body, text, []); }
        if (chunk.choices[0].finish_reason) final = chunk;
      }
    }
  } catch (e) {
    status.textContent = `Something went wrong: ${e.message}`;
    item.setAttribute("aria-busy", "false");
    state.messages.pop();
    return;
  }
  item.setAttribute("aria-busy", "false");
  const citations = (final && final.citations) || [];
  renderAnswer(body, text, citations);
  state.messages.push({ role: "assistant", content: text });
  // an abstention's text already says so; the status line speaks only when the text is empty
  status.textContent = final && final.abstained && !text.trim() ? "Groundwork could not find an answer to this in your documents." : "";
  status.hidden = !status.textContent;
  if (final && final.abstained) item.classList.add("abstained");
  if (citations.length) item.append(sourceList(text, citations));
  if (final && final.pending_actions && final.pending_actions.length) {
    item.append(h("p", { class: "pending-note" }, h("a", { href: "#/actions" }, `Review ${final.pending_actions.length} pending action(s)`)));
  }
  if (final && final.answer_id) item.append(feedbackForm(final.answer_id));
}

// -- pending actions (agent mode) -----------------------------------------------------------------------
async function showActions() {
  const items = await (await api("/v1/actions/pending?status=all")).json();
  $("#actions-empty").hidden = items.some((a) => a.status === "pending");
  $("#actions-table tbody").replaceChildren(...items.map((a) => h("tr", {},
    h("td", {}, fmtTime(a.created_at)),
    h("td", {}, a.action),
    h("td", {}, h("code", {}, JSON.stringify(a.arguments))),
    h("td", {}, a.caller),
    h("td", { class: "action-status" }, a.status + (a.decided_by ? ` (${a.decided_by})` : "") + (a.result && a.result.error ? `: ${a.result.error}` : "")),
    h("td", {}, a.status !== "pending" ? "" : [
      h("button", { type: "button", "aria-label": `Confirm ${a.action} ${a.id}`, onclick: () => decideAction(a.id, "confirm") }, "Confirm"),
      " ",
      h("button", { type: "button", class: "secondary", "aria-label": `Reject ${a.action} ${a.id}`, onclick: () => decideAction(a.id, "reject") }, "Reject"),
    ]))));
}

async function decideAction(id, verb) {
  try {
    const a = await (await api(`/v1/actions/pending/${encodeURIComponent(id)}/${verb}`, { method: "POST" })).json();
    toast(`${a.action}: ${a.status}`);
  } catch (e) { toast(e.message); }
  await showActions();
}

let sourceLists = 0; // ids that tie each list to its title

function sourceList(text, citations) {
  // one entry per cited chunk, in [n] order; each opens the chunk like the [n] button in the text
  const items = [...citations].sort((a, b) => a.n - b.n).map((c) => {
    const marker = text.indexOf(`[${c.n}]`);
    const before = marker >= 0 ? text.slice(0, marker) : "";
    const label = [fileName(c.source), where(c)].filter(Boolean).join(" · ");
    return h("li", {}, h("button", { type: "button", class: "source", "aria-label": `Show source ${c.n}: ${label}`,
      onclick: () => openCitation(c, before) }, h("span", { class: "n" }, `[${c.n}]`), " ", label));
  });
  return h("div", { class: "sources" }, h("p", { class: "sources-title", id: `s-${++sourceLists}` }, "Sources"),
    h("ol", { "aria-labelledby": `s-${sourceLists}` }, items));
}

function feedbackForm(answerId) {
  const note = h("p", { class: "status", role: "status" });
  const comment = h("input", { id: `c-${answerId}`, placeholder: "Optional comment" });
  const send = (rating) => api("/v1/feedback", { method: "POST", json: { answer_id: answerId, rating, comment: comment.value || null } })
    .then(() => { note.textContent = "Thanks, your feedback was recorded."; }).catch((e) => { note.textContent = e.message; });
  return h("div", { class: "feedback" },
    h("button", { type: "button", class: "secondary", "aria-label": "Helpful", onclick: () => send("up") }, "Helpful"),
    h("button", { type: "button", class: "secondary", "aria-label": "Not helpful", onclick: () => send("down") }, "Not helpful"),
    h("label", { for: `c-${answerId}`, class: "sr-only" }, "Comment"), comment, note);
}

// -- documents --------------------------------------------------------------------------------------
async function showDocuments(docId) {
  const q = $("#doc-q").value.trim();
  const params = new URLSearchParams({ offset: state.docOffset, limit: state.docLimit });
  if (q) params.set("q", q);
  const page = await (await api(`/v1/documents?${params}`)).json();
  const versions = await (await api("/v1/versions")).json();
  const versionOf = new Map();
  for (const v of versions) for (const id of v.changed_doc_ids) versionOf.set(id, v.version);
  const tbody = $("#doc-table tbody");
  tbody.replaceChildren(...page.items.map((d) => h("tr", {},
    h("td", {}, h("a", { href: `#/documents/${encodeURIComponent(d.doc_id)}` }, d.label || fileName(d.source))),
    h("td", {}, d.type), h("td", {}, d.chunks), h("td", {}, fmtSize(d.chars)),
    h("td", { title: (d.parse && d.parse.warnings) || "" }, parseSummary(d.parse)), h("td", {}, fmtTime(d.ingested_at)),
    h("td", {}, versionOf.get(d.doc_id) ?? ""),
    h("td", {}, can("ingest") ? h("button", { type: "button", class: "danger", "aria-label": `Delete ${fileName(d.source)}`,
      onclick: () => deleteDoc(d) }, "Delete") : ""))));
  if (!page.items.length) tbody.append(h("tr", {}, h("td", { colspan: 8 }, "No documents yet.")));
  await showSyncs();
  $("#page-info").textContent = page.total ? `${page.offset + 1}–${page.offset + page.items.length} of ${page.total}` : "";
  $("#prev-page").disabled = page.offset === 0;
  $("#next-page").disabled = page.offset + page.items.length >= page.total;
  const detail = $("#doc-detail");
  if (docId) {
    const d = await (await api(`/v1/documents/${docId}`)).json();
    $("#doc-detail-title").textContent = `${d.label || fileName(d.source)} — ${nChunks(d.chunks)}`;
    $("#doc-parse").textContent = parseDetail(d.parse);
    $("#doc-chunks").replaceChildren(...d.chunk_list.map((c) => h("li", {},
      h("p", { class: "where" }, where(c, d)), h("div", { class: "md" }, renderMarkdown(c.text)))));
    detail.hidden = false;
  } else detail.hidden = true;
}

// The parsing report (recorded at ingest): "pptx · 8 slides · OCR 40% · 1 warning".
function parseSummary(p) {
  if (!p || !p.loader) return "";
  const parts = [p.loader];
  if (p.units != null) parts.push(`${p.units} ${p.unit || ""}`.trim());
  if (p.ocr_share) parts.push(`OCR ${Math.round(p.ocr_share * 100)}%`);
  const n = p.warnings ? p.warnings.split("; ").length : 0;
  if (n) parts.push(`${n} warning${n > 1 ? "s" : ""}`);
  return parts.join(" · ");
}

function parseDetail(p) {
  if (!p || !p.loader) return "";
  const chars = p.chars != null ? ` · ${p.chars.toLocaleString()} characters` : "";
  return `Parsed as ${parseSummary(p)}${chars}${p.warnings ? ` — warnings: ${p.warnings}` : ""}`;
}

// the latest syncs of serve.sources / serve.sync_paths (scheduled or asked for), with what each changed
async function showSyncs() {
  const box = $("#sync-runs");
  box.hidden = !(can("admin") && state.me.sync_configured);
  if (box.hidden) return;
  const runs = await (await api("/v1/syncs?limit=5")).json();
  const n = (r, k) => (r.summary ? r.summary[k] : "");
  $("#sync-table tbody").replaceChildren(...runs.map((r) => h("tr", { class: r.status === "failed" ? "error" : "" },
    h("td", {}, fmtTime(r.created_at)), h("td", {}, r.error ? `${r.status}: ${r.error}` : r.status),
    h("td", {}, n(r, "added")), h("td", {}, n(r, "updated")), h("td", {}, n(r, "deleted")), h("td", {}, n(r, "failed")))));
  if (!runs.length) $("#sync-table tbody").append(h("tr", {}, h("td", { colspan: 6 }, "No syncs yet.")));
}

async function deleteDoc(d) {
  if (!confirm(`Delete ${fileName(d.source)} from the knowledge base?`)) return;
  await api(`/v1/documents/${d.doc_id}`, { method: "DELETE" });
  toast(`${fileName(d.source)} was deleted.`);
  $("#filter-source").replaceChildren(h("option", { value: "" }, "All documents"));
  location.hash = "#/documents";
  await showDocuments("");
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const groups = $("#upload-groups").value.trim();
  if (groups) form.append("allowed_groups", groups);
  const box = h("div", { class: "job" }, h("p", {}, `Uploading ${files.length} file(s)…`));
  $("#jobs").prepend(box);
  let job;
  try {
    job = await (await api("/v1/documents", { method: "POST", body: form })).json();
  } catch (e) { box.replaceChildren(h("p", { class: "error" }, `Upload failed: ${e.message}`)); return; }
  await watchJob(job.job_id, box);
}

async function watchJob(jobId, box) {
  for (;;) {
    const job = await (await api(`/v1/jobs/${jobId}`)).json();
    const finished = job.status === "done" || job.status === "failed";
    // a re-sync job has no file count (total 0): a finished job shows a full bar either way
    const bar = h("progress", { max: job.total || 1, value: finished ? job.total || 1 : job.done, "aria-label": "Ingest progress" });
    const rows = job.results.map((r) => h("li", { class: r.status === "failed" ? "error" : "" },
      `${r.file}: ${r.status === "failed" ? `could not be added — ${r.reason}` : `${r.status} (${nChunks(r.chunks)})`}`));
    const label = job.status === "done" ? "Finished" : job.status === "failed" ? "Finished with errors" : `Processing ${job.done} of ${job.total}`;
    box.replaceChildren(h("p", { class: "job-status" }, label), bar, h("ul", {}, rows));
    if (finished) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  $("#filter-source").replaceChildren(h("option", { value: "" }, "All documents"));
  await showDocuments("");
}

// -- versions, audit, evaluation ----------------------------------------------------------------------
async function showVersions() {
  const versions = await (await api("/v1/versions")).json();
  $("#version-table tbody").replaceChildren(...versions.slice().reverse().map((v) => h("tr", {},
    h("td", {}, v.version), h("td", {}, fmtTime(v.created_at)), ...["added", "updated", "deleted", "documents", "chunks"].map(
      (k) => h("td", { title: v[k] === null ? "totals count every tenant's documents; shown to unrestricted keys only" : "" }, v[k] ?? "—")),
    h("td", {}, v.changed_doc_ids.map(fileName).join(", ")))));
}

async function showAudit(answerId) {
  if (!can("admin")) { toast("The audit view needs an admin key."); return; }
  const records = await (await api("/v1/audit?limit=100")).json();
  $("#audit-table tbody").replaceChildren(...records.map((r) => h("tr", {},
    h("td", {}, fmtTime(r.created_at)), h("td", {}, r.caller), h("td", {}, r.question),
    h("td", {}, [...new Set((r.cited || []).map((c) => fileName(c.source)))].join(", ") || (r.abstained ? "(abstained)" : "")),
    h("td", {}, `${Math.round((r.latency_ms || {}).total || 0)} ms`),
    h("td", {}, (r.feedback || []).map((f) => `${f.rating === "up" ? "helpful" : "not helpful"}${f.comment ? `: ${f.comment}` : ""}`).join("; ")),
    h("td", {}, h("a", { href: `#/audit/${r.answer_id}` }, "Details")))));
  const detail = $("#audit-detail");
  if (!answerId) { detail.hidden = true; return; }
  const r = await (await api(`/v1/audit/${answerId}`)).json();
  const fields = [["Question", r.question], ["Answer", r.answer], ["Who", r.caller], ["Time", fmtTime(r.created_at)],
    ["Model", r.model_id], ["Prompt", r.prompt || "—"], ["Index version", r.index_version],
    ["Retrieved", (r.retrieved || []).map((x) => `${fileName(x.source)} (${x.score.toFixed(3)})`).join(", ")],
    ["Guardrails", (r.guardrails || []).map((g) => `${g.guard}: ${g.action}`).join(", ") || "none"],
    ["Latency", Object.entries(r.latency_ms || {}).map(([k, v]) => `${k} ${Math.round(v)} ms`).join(", ")],
    ["Feedback", (r.feedback || []).map((f) => `${f.rating}${f.comment ? `: ${f.comment}` : ""}`).join("; ") || "none"]];
  $("#audit-fields").replaceChildren(...fields.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  detail.hidden = false;
}

const EVAL_METRICS = ["ndcg@10", "recall@10", "mrr@10", "hits@4", "hits@10", "map@10", "containment", "faithfulness", "rougeL"];

function barChart(title, series) {
  // series: [{label, value}] with values in [0, 1]; drawn as SVG, no library
  const w = 560, rowH = 26, pad = 150;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${series.length * rowH + 10}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${series.map((s) => `${s.label} ${s.value.toFixed(3)}`).join(", ")}`);
  series.forEach((s, i) => {
    const y = i * rowH + 5;
    const mk = (tag, attrs, text) => { const e = document.createElementNS(svg.namespaceURI, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; svg.append(e); };
    mk("text", { x: 0, y: y + 16, class: "bar-label" }, s.label.slice(0, 22));
    mk("rect", { x: pad, y, width: Math.max(1, (w - pad - 60) * Math.min(1, s.value)), height: rowH - 8, class: "bar" });
    mk("text", { x: pad + (w - pad - 60) * Math.min(1, s.value) + 6, y: y + 16, class: "bar-value" }, s.value.toFixed(3));
  });
  return h("figure", {}, h("figcaption", {}, title), svg);
}

async function showEval() {
  const results = await (await api("/v1/eval")).json();
  $("#eval-empty").hidden = results.length > 0;
  const out = $("#eval-results");
  out.replaceChildren();
  for (const res of results) {
    const configs = Object.keys(res.results);
    const metrics = EVAL_METRICS.filter((m) => configs.some((c) => typeof res.results[c][m] === "number"));
    const table = h("table", {}, h("caption", {}, `${res.name} (${fmtTime(res.modified)})`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "metric"), configs.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, metrics.map((m) => h("tr", {}, h("th", { scope: "row" }, m),
        configs.map((c) => h("td", {}, typeof res.results[c][m] === "number" ? res.results[c][m].toFixed(4) : "—"))))));
    const charts = metrics.slice(0, 3).map((m) => barChart(`${m} per configuration`,
      configs.filter((c) => typeof res.results[c][m] === "number").map((c) => ({ label: c, value: res.results[c][m] }))));
    const perType = configs.filter((c) => res.results[c].per_type);
    for (const c of perType) {
      const pt = res.results[c].per_type;
      const key = Object.values(pt).some((v) => typeof v["hits@10"] === "number") ? "hits@10" : "ndcg@10";
      charts.push(barChart(`${key} per question type (${c})`, Object.entries(pt).map(([t, v]) => ({ label: t.replace("_query", ""), value: v[key] || 0 }))));
    }
    out.append(h("section", { class: "eval" }, h("h3", {}, res.name), h("div", { class: "table-wrap" }, table), h("div", { class: "charts" }, charts)));
  }
}

// -- wiring ------------------------------------------------------------------------------------------
window.addEventListener("hashchange", route);
$("#signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#signin-error").textContent = "";
  try { await signIn($("#key").value.trim()); $("#key").value = ""; go("#/chat"); }
  catch (err) { if (err.message !== "unauthorized") $("#signin-error").textContent = err.message; }
});
$("#signout").addEventListener("click", () => signOut());
$("#ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("#question").value.trim();
  if (!q) return;
  $("#question").value = "";
  ask(q);
});
$("#question").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#ask-form").requestSubmit(); } });
function closeCitation() {
  $("#citation-panel").hidden = true;
  for (const id of ["#citation-title", "#citation-where", "#citation-text"]) $(id).replaceChildren();
  $("#citation-doc").href = "#";
}
$("#new-chat").addEventListener("click", () => { state.messages = []; $("#messages").replaceChildren(); closeCitation(); });
$("#close-citation").addEventListener("click", closeCitation);
$("#doc-search").addEventListener("submit", (e) => { e.preventDefault(); state.docOffset = 0; showDocuments("").catch((err) => toast(err.message)); });
$("#prev-page").addEventListener("click", () => { state.docOffset = Math.max(0, state.docOffset - state.docLimit); showDocuments(""); });
$("#next-page").addEventListener("click", () => { state.docOffset += state.docLimit; showDocuments(""); });
$("#resync").addEventListener("click", async () => {
  try {
    const job = await (await api("/v1/sync", { method: "POST" })).json();
    const box = h("div", { class: "job" });
    $("#jobs").prepend(box);
    await watchJob(job.job_id, box);
  } catch (e) { toast(e.message); }
});
$("#review-status").addEventListener("change", () => { location.hash = "#/reviews"; showReviews(ctx, "").catch((e) => toast(e.message)); });
$("#review-form").addEventListener("submit", (e) => { e.preventDefault(); resolveReview(ctx, false); });
$("#review-dismiss").addEventListener("click", () => resolveReview(ctx, true));
$("#choose-files").addEventListener("click", () => $("#file-input").click());
$("#file-input").addEventListener("change", (e) => { upload([...e.target.files]); e.target.value = ""; });
const drop = $("#dropzone");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });

(async () => {
  if (state.key) { try { await signIn(state.key); } catch (_) { state.key = ""; } }
  if (!state.me) {
    const dev = await noAuthServer();
    if (dev) enter(dev);
  }
  if (!state.me) go("#/signin");
  else if (location.hash === "#/signin") go("#/chat");
  else route();
})();
