// The wasmtel dashboard: polls the status API once a second and renders it.
// Telemetry is untrusted: everything is inserted as text, never as markup.
"use strict";

const STATUS = "/api/wasmtel/v1/status";
const POLL_MS = 1000;
const SIGNALS = ["traces", "metrics", "logs"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const number = (n) => Number(n || 0).toLocaleString("en-US", { maximumFractionDigits: 1 });
const micros = (us) => (us >= 1000 ? `${number(us / 1000)} ms` : `${number(us)} µs`);
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n || 0), unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${number(value)} ${units[unit]}`;
}
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "—");
const figure = (id, value, cls) => el("span", { "data-testid": id, class: cls || "" }, value);
const sum = (object) => Object.values(object || {}).reduce((a, b) => a + b, 0);
const pairs = (object) => Object.entries(object || {}).map(([k, v]) => `${k} ${number(v)}`).join(", ") || "—";
// Only the kinds that happened (errors by kind: most are zero).
const nonZero = (object) => Object.fromEntries(Object.entries(object || {}).filter(([, v]) => v));

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

function processors(pipeline) {
  if (!pipeline.processors.length) return null;
  const rows = pipeline.processors.map((p) => {
    const m = p.metrics, id = `${pipeline.id}/${p.node}`;
    const errors = sum(m.errors);
    return el("tr", {},
      el("td", {}, el("strong", {}, p.node), el("div", { class: "muted" }, `${m.plugin} · ${p.cores} core(s)`)),
      el("td", { class: "num" }, figure(`calls:${id}`, number(m.calls))),
      el("td", {}, figure(`outcomes:${id}`, pairs({ unchanged: m.unchanged, replaced: m.replaced, dropped: m.dropped, skipped: m.skipped }))),
      el("td", {}, figure(`errors:${id}`, number(errors), errors ? "bad" : ""), el("div", { class: "muted" }, pairs(nonZero(m.errors)))),
      el("td", {}, figure(`on_error:${id}`, pairs({ pass: m.policy_passed, drop: m.policy_dropped, fail: m.policy_failed })),
        m.quarantined ? el("div", { class: "bad" }, `quarantined ${m.quarantined}×`) : null),
      el("td", { class: "num" }, figure(`latency:${id}`,
        `${micros(p.latency_us.p50)} / ${micros(p.latency_us.p90)} / ${micros(p.latency_us.p99)}`)),
      el("td", {}, figure(`guest:${id}`, pairs(m.guest_counters)),
        el("div", { class: "muted" }, `${bytes(m.bytes_in)} in · ${bytes(m.bytes_out)} out · peak guest memory ${bytes(m.guest_memory_max_bytes)}`)));
  });
  return el("div", {}, el("h3", {}, "Wasm processors"),
    table(["node", "calls", "outcomes", "errors", "on_error", "latency p50 / p90 / p99", "guest counters"], rows));
}

function chart(pipeline) {
  const samples = pipeline.throughput;
  const width = 600, height = 150, pad = 4;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("data-testid", `chart:${pipeline.id}`);
  const series = [
    { key: "batches_per_s", color: "#3056d3", label: "batches/s" },
    { key: "rows_per_s", color: "#1f883d", label: "rows written/s" },
  ];
  const last = samples[samples.length - 1] || {};
  for (const { key, color } of series) {
    const max = Math.max(1, ...samples.map((s) => s[key]));
    const points = samples.map((s, i) => {
      const x = samples.length > 1 ? (i / (samples.length - 1)) * width : 0;
      const y = height - pad - (s[key] / max) * (height - 2 * pad);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  const legend = el("div", { class: "legend" }, ...series.map(({ key, color, label }) =>
    el("span", {}, el("i", { style: `background:${color}` }), `${label}: `,
      figure(`${key}:${pipeline.id}`, number(last[key])))),
    el("span", { class: "muted" }, `${bytes(last.bytes_per_s)}/s OTLP in · last ${samples.length} s`));
  return el("div", {}, el("h3", {}, "Throughput"), svg, legend);
}

function breakers(pipeline) {
  if (!pipeline.breakers.length) return null;
  const rows = pipeline.breakers.map((b) => {
    const id = `${pipeline.id}/${b.node}`;
    return el("tr", {},
      el("td", {}, el("strong", {}, b.node)),
      el("td", {}, figure(`breaker:${id}`, b.state, `pill ${b.state}`), el("div", { class: "muted" }, `cores: ${b.cores.join(", ")}`)),
      el("td", { class: "num" }, number(b.opened)),
      el("td", { class: "num" }, figure(`rejected:${id}`, number(b.rejected))),
      el("td", { class: "num" }, number(b.failures)),
      el("td", { class: "num" }, number(b.successes)),
      el("td", { class: "mono" }, b.last_failure || "—"));
  });
  return el("div", {}, el("h3", {}, "Circuit breakers"),
    table(["node", "state", "opened", "rejected", "failures", "successes", "last failure"], rows));
}

function files(pipeline) {
  if (!pipeline.exporters.length) return null;
  const rows = [];
  for (const exporter of pipeline.exporters) {
    for (const signal of SIGNALS) {
      const f = exporter.signals[signal];
      const id = `${pipeline.id}/${exporter.node}/${signal}`;
      rows.push(el("tr", {},
        el("td", {}, el("strong", {}, exporter.node), el("div", { class: "muted mono" }, exporter.directory)),
        el("td", {}, signal),
        el("td", { class: "num" }, figure(`files:${id}`, number(f.files))),
        el("td", { class: "num" }, figure(`rows:${id}`, number(f.rows_written))),
        el("td", { class: "num" }, bytes(f.bytes_on_disk)),
        el("td", {}, el("span", { class: "mono" }, f.newest || "—"), el("div", { class: "muted" }, time(f.newest_modified_ms)))));
    }
  }
  return el("div", {}, el("h3", {}, "Arrow IPC files"),
    table(["exporter", "signal", "files", "rows written", "on disk", "newest"], rows));
}

function recent(pipeline) {
  const blocks = [];
  for (const signal of SIGNALS) {
    const r = pipeline.recent[signal];
    if (!r) continue;
    const id = `${pipeline.id}/${signal}`;
    let body;
    if (r.records.Err !== undefined) {
      body = el("p", { class: "bad" }, r.records.Err);
    } else {
      body = table(["service", "name", "detail", "attributes"], r.records.Ok.map((rec) =>
        el("tr", { "data-testid": `record:${id}` },
          el("td", {}, rec.service || "—"),
          el("td", {}, rec.name),
          el("td", {}, rec.detail),
          el("td", { class: "mono" }, rec.attributes.map(([k, v]) => `${k}=${v}`).join("  ")))));
    }
    blocks.push(el("div", {}, el("h3", {}, `Newest ${signal}`,
      el("span", { class: "muted" }, ` as they left ${r.node}, ${time(r.at_ms)}`)), body));
  }
  return blocks.length ? el("div", {}, ...blocks) : null;
}

function render(status) {
  const main = document.getElementById("pipelines");
  const sections = status.pipelines.map((pipeline) =>
    el("section", { "data-testid": `pipeline:${pipeline.id}` },
      el("h2", {}, `Pipeline ${pipeline.id}`),
      el("div", { class: "grid" }, chart(pipeline), breakers(pipeline) || el("div")),
      processors(pipeline), files(pipeline), recent(pipeline)));
  main.replaceChildren(...(sections.length ? sections : [el("p", { class: "muted" }, "No wasmtel nodes are running.")]));
  document.getElementById("updated").textContent = time(status.generated_at_ms);
}

async function poll() {
  try {
    const response = await fetch(STATUS, { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    render(await response.json());
    document.getElementById("error").textContent = "";
  } catch (error) {
    document.getElementById("error").textContent = `status unavailable: ${error.message}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
