// The Review page (admin keys): answers marked "not helpful", poorly grounded or escalated. A reviewer
// writes the correct answer, ticks the documents that answer it and may write new knowledge, which
// becomes a document visible to the groups chosen (only the key's own groups are offered).
// Every text goes in as a text node (ctx.h), never as HTML.

export async function showReviews(ctx, reviewId) {
  const { api, h, $, fmtTime } = ctx;
  const status = $("#review-status").value;
  const items = await (await api(`/v1/reviews?status=${encodeURIComponent(status)}&limit=200`)).json();
  const tbody = $("#review-table tbody");
  tbody.replaceChildren(...items.map((r) => h("tr", {},
    h("td", {}, fmtTime(r.created_at)), h("td", {}, r.kind.replace("_", " ")), h("td", {}, r.question),
    h("td", {}, r.reasons.join("; ")), h("td", {}, [r.tenant || "—", (r.groups || []).join(", ")].filter(Boolean).join(" · ")),
    h("td", {}, r.status), h("td", {}, h("a", { href: `#/reviews/${r.review_id}`, "aria-label": `Review: ${r.question}` }, "Review")))));
  if (!items.length) tbody.append(h("tr", {}, h("td", { colspan: 7 }, `No ${status === "all" ? "" : `${status} `}reviews.`)));
  const detail = $("#review-detail");
  if (!reviewId) { detail.hidden = true; return; }
  const r = await (await api(`/v1/reviews/${encodeURIComponent(reviewId)}`)).json();
  renderDetail(ctx, r);
  detail.hidden = false;
}

function renderDetail(ctx, r) {
  const { h, $, fileName } = ctx;
  $("#review-question").textContent = r.question;
  $("#review-answer").textContent = r.answer || "(no answer)";
  $("#review-reasons").textContent = r.reasons.join("; ") || "—";
  $("#review-asker").textContent = [r.asker, r.tenant, (r.groups || []).join(", ")].filter(Boolean).join(" · ") || "—";
  const docs = [...new Map(r.evidence.map((e) => [e.doc_id, e])).values()];
  $("#review-evidence").replaceChildren(...docs.map((e, i) => h("li", {},
    h("input", { type: "checkbox", id: `ev-${i}`, value: e.doc_id, class: "ev" }),
    h("label", { for: `ev-${i}`, class: "inline" }, `${fileName(e.source)}${typeof e.score === "number" ? ` (score ${e.score.toFixed(3)})` : ""}`))));
  if (!docs.length) $("#review-evidence").append(h("li", {}, "No evidence: the answer cited nothing."));
  const mine = new Set(ctx.me().groups || []);
  $("#review-groups").value = (r.groups || []).filter((g) => ctx.me().no_auth || mine.has(g)).join(", ");
  $("#review-tenant").textContent = ctx.me().tenant || "(none)";
  for (const id of ["#review-correct", "#review-doc-title", "#review-doc-text"]) $(id).value = "";
  $("#review-result").textContent = r.status === "open" ? "" : `This review is ${r.status}.`;
  $("#review-form").hidden = r.status !== "open";
  $("#review-form").dataset.id = r.review_id;
}

export async function resolveReview(ctx, dismiss) {
  const { api, $ } = ctx;
  const id = $("#review-form").dataset.id;
  const note = $("#review-result");
  try {
    if (dismiss) {
      await api(`/v1/reviews/${id}/dismiss`, { method: "POST", json: { reason: $("#review-correct").value.trim() || null } });
      note.textContent = "Dismissed.";
    } else {
      const body = { answer: $("#review-correct").value.trim() || null, doc_ids: [...document.querySelectorAll("#review-evidence .ev:checked")].map((c) => c.value) };
      const text = $("#review-doc-text").value.trim();
      if (text) {
        const groups = $("#review-groups").value.split(",").map((g) => g.trim()).filter(Boolean);
        body.document = { text, title: $("#review-doc-title").value.trim() || null, groups };
      }
      const r = await (await api(`/v1/reviews/${id}/resolve`, { method: "POST", json: body })).json();
      const doc = r.resolution.document;
      note.textContent = `Resolved: added to the eval set as ${r.resolution.eval_question_id}` +
        (doc ? `; new document ${doc.doc_id} (index version ${doc.version}).` : ".");
    }
    $("#review-form").hidden = true;
    await showReviews(ctx, "");
    $("#review-detail").hidden = false;
  } catch (e) { note.textContent = e.message; }
}
