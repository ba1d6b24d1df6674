// The Health page (admin keys without a tenant): the drift monitor's runs (`groundwork monitor run`).
// Charts are inline SVG (no chart library is vendored): eval metrics over time, the top-1 score
// distribution now vs the reference window, PSI and abstention rate over time.

const SVG = "http://www.w3.org/2000/svg";
const METRICS = ["ndcg@10", "recall@10", "mrr@10", "hits@10"];

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(label, w, hgt) {
  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": label });
  return svg;
}

// series: [{name, values: [number|null per run]}]; x: run labels; yMax: top of the axis
function lineChart(ctx, title, x, series, yMax, threshold) {
  const w = 560, hgt = 220, left = 44, right = 110, top = 10, bottom = 30;
  const pw = w - left - right, ph = hgt - top - bottom;
  const px = (i) => left + (x.length > 1 ? (pw * i) / (x.length - 1) : pw / 2);
  const py = (v) => top + ph - (ph * Math.min(v, yMax)) / yMax;
  const described = series.map((s) => `${s.name}: ${s.values.map((v) => (v === null ? "—" : v.toFixed(3))).join(", ")}`).join("; ");
  const svg = frame(`${title}. ${described}`, w, hgt);
  for (const t of [0, 0.5, 1]) {
    svg.append(svgEl("line", { x1: left, x2: left + pw, y1: py(t * yMax), y2: py(t * yMax), class: "grid" }));
    svg.append(svgEl("text", { x: left - 6, y: py(t * yMax) + 4, "text-anchor": "end" }, (t * yMax).toFixed(2)));
  }
  if (threshold !== undefined) svg.append(svgEl("line", { x1: left, x2: left + pw, y1: py(threshold), y2: py(threshold), class: "threshold" }));
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (v === null ? null : `${px(i)},${py(v)}`)).filter(Boolean);
    if (pts.length) svg.append(svgEl("polyline", { points: pts.join(" "), class: `line line-${k}` }));
    s.values.forEach((v, i) => { if (v !== null) svg.append(svgEl("circle", { cx: px(i), cy: py(v), r: 3, class: `dot line-${k}` })); });
    svg.append(svgEl("text", { x: left + pw + 10, y: top + 14 + 18 * k, class: `legend line-${k}` }, s.name));
  });
  if (x.length) {
    svg.append(svgEl("text", { x: left, y: hgt - 8 }, x[0]));
    if (x.length > 1) svg.append(svgEl("text", { x: left + pw, y: hgt - 8, "text-anchor": "end" }, x[x.length - 1]));
  }
  return ctx.h("figure", {}, ctx.h("figcaption", {}, title), svg);
}

function histogramChart(ctx, title, hist) {
  const w = 560, hgt = 220, left = 44, top = 10, bottom = 40;
  const n = hist.current.length, ph = hgt - top - bottom, bw = (w - left - 10) / n;
  const max = Math.max(...hist.current, ...hist.reference, 0.01);
  const label = `${title}. Reference: ${hist.reference.map((v) => v.toFixed(2)).join(", ")}. Now: ${hist.current.map((v) => v.toFixed(2)).join(", ")}`;
  const svg = frame(label, w, hgt);
  hist.reference.forEach((v, i) => {
    svg.append(svgEl("rect", { x: left + i * bw + 2, y: top + ph - (ph * v) / max, width: bw / 2 - 2, height: (ph * v) / max, class: "bar-ref" }));
    const c = hist.current[i];
    svg.append(svgEl("rect", { x: left + i * bw + bw / 2, y: top + ph - (ph * c) / max, width: bw / 2 - 2, height: (ph * c) / max, class: "bar" }));
  });
  svg.append(svgEl("text", { x: left, y: hgt - 22 }, hist.edges[0].toFixed(3)));
  svg.append(svgEl("text", { x: w - 10, y: hgt - 22, "text-anchor": "end" }, hist.edges[hist.edges.length - 1].toFixed(3)));
  svg.append(svgEl("rect", { x: left, y: hgt - 14, width: 10, height: 10, class: "bar-ref" }));
  svg.append(svgEl("text", { x: left + 14, y: hgt - 5 }, "reference window"));
  svg.append(svgEl("rect", { x: left + 160, y: hgt - 14, width: 10, height: 10, class: "bar" }));
  svg.append(svgEl("text", { x: left + 174, y: hgt - 5 }, "recent window"));
  return ctx.h("figure", {}, ctx.h("figcaption", {}, title), svg);
}

const fmt = (v) => (typeof v === "number" ? v.toFixed(4) : "—");

export async function showHealth(ctx) {
  const { api, h, $, fmtTime } = ctx;
  const out = $("#health-body");
  let data;
  try { data = await (await api("/v1/monitor?limit=100")).json(); }
  catch (e) { out.replaceChildren(h("p", { class: "error" }, e.message)); return; }
  const runs = data.runs.slice().reverse(); // oldest first
  if (!runs.length) {
    out.replaceChildren(h("p", {}, "No monitor runs yet. Run ", h("code", {}, "groundwork monitor run"), " (cron), or set ", h("code", {}, "monitor.interval_s"), "."));
    return;
  }
  const last = runs[runs.length - 1], t = last.traffic;
  const problems = [...last.eval_regressions.map((m) => `${m} regressed`), ...last.drift.map((k) => `${k} drifted`)];
  const status = h("p", { class: last.alert ? "alert-box" : "ok-box", role: "status", id: "health-status" },
    last.alert ? `Alert: ${problems.join(", ")}` : "Healthy: no regression, no drift", ` (run of ${fmtTime(last.created_at)})`);
  const rows = [["Questions in the eval set", last.eval ? last.eval.questions : 0, ""],
    ...METRICS.map((m) => [m, fmt(((last.eval || {}).metrics || {})[m]), fmt((last.baseline_eval || {})[m])]),
    ["Abstention rate", fmt(t.abstention_rate), fmt(t.abstention_rate_reference)],
    ["Top-1 score PSI", fmt(t.top1_psi), `alert above ${(data.settings.psi_alert + (t.top1_psi_noise || 0)).toFixed(3)}`],
    ["Top-1 score KS p-value", fmt(t.top1_ks_pvalue), ""],
    ["Query embedding PSI", fmt(t.embedding_psi), `alert above ${(data.settings.psi_alert + (t.embedding_psi_noise || 0)).toFixed(3)}`],
    ["Answers compared", `${t.current_n} recent`, `${t.reference_n} reference`]];
  const table = h("table", { id: "health-table" }, h("caption", {}, "Latest run"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "figure"), h("th", { scope: "col" }, "now"), h("th", { scope: "col" }, "baseline / reference"))),
    h("tbody", {}, rows.map(([a, b, c]) => h("tr", {}, h("th", { scope: "row" }, a), h("td", {}, b), h("td", {}, c)))));
  const x = runs.map((r) => fmtTime(r.created_at).slice(5, 16));
  const charts = [lineChart(ctx, "Eval metrics on the live index, per run", x,
    METRICS.map((m) => ({ name: m, values: runs.map((r) => { const v = ((r.eval || {}).metrics || {})[m]; return typeof v === "number" ? v : null; }) })), 1)];
  if (t.histogram) charts.push(histogramChart(ctx, "Top-1 retrieval score: recent vs reference window (share of answers)", t.histogram));
  const psis = runs.flatMap((r) => [r.traffic.top1_psi, r.traffic.embedding_psi]).filter((v) => typeof v === "number");
  charts.push(lineChart(ctx, "Drift per run (PSI) and abstention rate", x, [
    { name: "top-1 PSI", values: runs.map((r) => r.traffic.top1_psi ?? null) },
    { name: "query PSI", values: runs.map((r) => r.traffic.embedding_psi ?? null) },
    { name: "abstention", values: runs.map((r) => r.traffic.abstention_rate ?? null) }],
  Math.max(1, data.settings.psi_alert * 1.5, ...psis), data.settings.psi_alert));
  out.replaceChildren(status, h("div", { class: "table-wrap" }, table), h("div", { class: "charts" }, charts));
}
