// The monitor page served at / : one self-contained HTML document (inline CSS and script, no external assets),
// fed by /api/events (server-sent events): directors, services, real servers with charts, latest decisions, drops.

const CSS = `
:root { --bg:#0f1419; --panel:#182029; --line:#2a3643; --fg:#d8dee6; --dim:#8b98a7; --ok:#3fb950; --bad:#f85149; --warn:#d29922; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; align-items:baseline; gap:16px; padding:10px 18px; border-bottom:1px solid var(--line); background:var(--panel); }
header h1 { font-size:17px; margin:0; }
header .dim { color:var(--dim); }
#status { padding:2px 8px; border-radius:10px; font-weight:600; font-size:12px; }
#status.live { background:#12361f; color:var(--ok); }
#status.down { background:#3d1516; color:var(--bad); }
main { display:grid; grid-template-columns: minmax(0, 3fr) minmax(340px, 2fr); gap:14px; padding:14px 18px; }
section.panel { overflow-x:auto; background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; margin-bottom:14px; }
section.panel h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 8px; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.n, th.n { text-align:right; }
.svc h3 { margin:4px 0 6px; font-size:14px; display:flex; gap:12px; align-items:baseline; }
.svc h3 .dim { color:var(--dim); font-weight:400; font-size:12px; }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:10px; margin:6px 0 4px; }
.chart { width:100%; height:130px; background:#11181f; border:1px solid var(--line); border-radius:4px; }
.chart text { fill:var(--dim); font-size:10px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:middle; }
.ok { color:var(--ok); } .bad { color:var(--bad); } .warn { color:var(--warn); } .dim { color:var(--dim); }
.outcome-scheduled, .outcome-persistent { color:var(--ok); }
.outcome-no-dest, .outcome-overloaded, .outcome-quiescent, .outcome-table-full { color:var(--bad); font-weight:600; }
#decisions td { font-size:12px; }
#decisions td.cands { white-space:pre-line; color:var(--dim); font-size:11px; }
.empty { color:var(--dim); font-style:italic; }
`;

const SCRIPT = `
'use strict';
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#39c5cf', '#ff7b72', '#e3b341'];
let history = [];
const MAX_WINDOW_MS = 5 * 60 * 1000;
let windowMs = 60 * 1000;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(typeof k === 'string' || typeof k === 'number' ? String(k) : k);
  return e;
}
function svgEl(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
const fmt = (n) => (Math.round(n * 10) / 10).toLocaleString('en-US');
function healthCell(h, detail) {
  if (h === null) return el('td', { class: 'health dim' }, '—');
  return el('td', { class: 'health ' + (h === 'up' ? 'ok' : h === 'down' ? 'bad' : 'warn'), title: detail }, h);
}
function chart(title, keys, idx, now) {
  const W = 600, H = 130, L = 34, B = 16, T = 14;
  const svg = svgEl('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', 'data-title': title });
  let max = 1;
  for (const p of history) for (const k of keys) { const v = p.d[k]; if (v && v[idx] > max) max = v[idx]; }
  const x = (t) => L + (W - L - 4) * (1 - (now - t) / windowMs);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) svg.append(svgEl('line', { x1: L, x2: W - 4, y1: y(max * f), y2: y(max * f), stroke: '#2a3643', 'stroke-width': 1 }));
  const tt = svgEl('text', { x: L, y: 10 }); tt.textContent = title; svg.append(tt);
  const tm = svgEl('text', { x: 2, y: y(max) + 4 }); tm.textContent = fmt(max); svg.append(tm);
  const t0 = svgEl('text', { x: 2, y: y(0) + 4 }); t0.textContent = '0'; svg.append(t0);
  const tl = svgEl('text', { x: L, y: H - 3 }); tl.textContent = '-' + Math.max(1, Math.round(windowMs / 60000)) + ' min'; svg.append(tl);
  const tr = svgEl('text', { x: W - 28, y: H - 3 }); tr.textContent = 'now'; svg.append(tr);
  keys.forEach((k, i) => {
    const pts = [];
    for (const p of history) { const v = p.d[k]; if (v && p.t >= now - windowMs) pts.push(x(p.t).toFixed(1) + ',' + y(v[idx]).toFixed(1)); }
    if (pts.length > 0) svg.append(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.8, 'data-key': k, 'data-points': pts.length }));
  });
  return svg;
}
function renderServices(f) {
  const box = $('services');
  box.replaceChildren();
  if (f.services.length === 0) { box.append(el('p', { class: 'empty' }, 'No virtual services (add one with tsvsadm -A).')); return; }
  for (const s of f.services) {
    const keys = s.dests.map((d) => d.key);
    const rows = s.dests.map((d, i) => el('tr', { class: 'dest', 'data-addr': d.address + ':' + d.port },
      el('td', {}, el('span', { class: 'swatch', style: 'background:' + COLORS[i % COLORS.length] }), d.address + ':' + d.port),
      el('td', {}, d.method),
      el('td', { class: 'n weight' }, d.weight),
      el('td', { class: 'n active' }, d.active),
      el('td', { class: 'n inactive' }, d.inactive),
      el('td', { class: 'n cps' }, fmt(d.cps)),
      el('td', { class: 'n inpps' }, fmt(d.inpps)),
      el('td', { class: 'n conns' }, d.conns.toLocaleString('en-US')),
      healthCell(d.health, d.healthDetail),
      el('td', {}, d.overloaded ? el('span', { class: 'bad' }, 'overloaded') : d.weight === 0 ? el('span', { class: 'warn' }, 'quiescent') : '')));
    box.append(el('div', { class: 'svc', 'data-key': s.key },
      el('h3', {}, s.label, el('span', { class: 'dim' }, s.scheduler + (s.persistent ? ' persistent' : '') + ' · ' + s.conns.toLocaleString('en-US') + ' conns · ' + fmt(s.cps) + ' conn/s · ' + fmt(s.inpps) + ' pkt/s in')),
      el('table', {}, el('thead', {}, el('tr', {}, ...['Real server', 'Forward', 'Weight', 'ActiveConn', 'InActConn', 'Conn/s', 'InPkt/s', 'Conns', 'Health', ''].map((h, i) => el('th', { class: i >= 2 && i <= 7 ? 'n' : '' }, h)))), el('tbody', {}, ...rows)),
      el('div', { class: 'charts' }, chart('connections/s', keys, 0, f.t), chart('active connections', keys, 1, f.t))));
  }
}
function renderDirectors(f) {
  const tb = $('directors-body');
  tb.replaceChildren();
  const c = f.cluster;
  const owned = (node) => f.vips.filter((v) => v.owner === node).map((v) => v.vip).join(' ');
  if (c) {
    const members = c.members.length > 0 ? c.members : [{ name: c.self, state: c.role === 'none' ? 'backup' : c.role, priority: 0 }];
    for (const m of members) {
      const cls = m.state === 'leader' ? 'ok' : m.state === 'backup' ? 'dim' : 'bad';
      tb.append(el('tr', { class: 'member', 'data-node': m.name, 'data-state': m.state },
        el('td', {}, m.name + (m.name === c.self ? ' (this)' : '')),
        el('td', { class: 'state ' + cls }, m.state),
        el('td', { class: 'n' }, m.priority || '—'),
        el('td', { class: 'vips' }, owned(m.name))));
    }
    const lead = c.leader ? c.leader : 'none';
    $('cluster-head').replaceChildren(
      el('span', {}, 'cluster ', el('b', {}, c.cluster || '—')), ' · leader ', el('b', { id: 'leader' }, lead), ' · term ', el('b', { id: 'term' }, String(c.term)),
      ' · this director ', el('b', { id: 'role', class: c.role === 'leader' ? 'ok' : 'dim' }, c.role),
      ' · NATS ', el('span', { class: c.nats === 'up' ? 'ok' : 'bad' }, c.nats + (c.natsServer ? ' (' + c.natsServer + ')' : '')));
    const y = c.sync;
    const bad = y.gaps > 0 || y.resyncs > 0 || y.lost > 0;
    $('cluster-note').replaceChildren(el('span', { id: 'sync', class: bad ? 'warn' : 'ok' },
      'sync: ' + y.sent.toLocaleString('en-US') + ' records out, ' + y.received.toLocaleString('en-US') + ' in, ' + y.gaps + ' gaps, ' + y.resyncs + ' resyncs, ' + y.lost + ' lost, lag p50 ' + fmt(y.lag_p50_ms) + ' ms / p99 ' + fmt(y.lag_p99_ms) + ' ms' +
      (y.snapshot_entries > 0 ? ', snapshot ' + y.snapshot_entries.toLocaleString('en-US') + ' entries in ' + fmt(y.snapshot_ms) + ' ms' : '')),
      c.error ? el('div', { class: 'bad' }, 'agent: ' + c.error) : '');
  } else {
    tb.append(el('tr', { class: 'member', 'data-node': f.director, 'data-state': 'alone' }, el('td', {}, f.director), el('td', { class: 'state ok' }, 'alone'), el('td', { class: 'n' }, '—'), el('td', { class: 'vips' }, owned(f.director))));
    $('cluster-head').textContent = '';
    $('cluster-note').textContent = 'No cluster: this director runs alone and owns the VIPs.';
  }
  const vipBox = $('vip-owners');
  vipBox.replaceChildren(...f.vips.map((v) => el('span', { class: 'vip ' + (v.owner ? 'ok' : 'dim'), 'data-vip': v.vip, style: 'margin-right:12px' }, 'VIP ' + v.vip + ' → ' + (v.owner || 'unknown'))));
  const hs = f.checks || [];
  $('health-summary').textContent = f.checks === null ? 'health: no checker' : 'health: ' + hs.length + ' checked, ' + hs.filter((h) => h.state === 'up').length + ' up, ' + hs.filter((h) => h.state !== 'up').length + ' down';
}
function renderChecks(f) {
  const box = $('checks');
  box.replaceChildren();
  if (f.checks === null) { box.append(el('p', { class: 'empty' }, 'No health checker (tsvsd --keepalived FILE runs one).')); return; }
  box.append(el('table', {}, el('thead', {}, el('tr', {}, ...['Real server', 'State', 'Weight', 'Check', 'Failed / run', 'Up / down', 'Since'].map((h) => el('th', {}, h)))),
    el('tbody', { id: 'health-body' }, ...f.checks.map((c) => el('tr', { class: 'hc', 'data-addr': c.server, 'data-state': c.state },
      el('td', {}, c.server, el('div', { class: 'dim' }, c.vs)),
      el('td', { class: 'state ' + (c.state === 'up' ? 'ok' : 'bad') }, c.state),
      el('td', { class: 'n' }, c.weight === null ? 'out' : c.weight),
      el('td', { class: 'check' }, c.check, c.lastError ? el('div', { class: 'bad' }, c.lastError) : ''),
      el('td', { class: 'n' }, c.failures + ' / ' + c.checks),
      el('td', { class: 'n' }, c.ups + ' / ' + c.downs),
      el('td', { class: 'dim' }, c.lastChange ? new Date(c.lastChange).toLocaleTimeString('en-GB') : '—'))))));
  const wb = $('workers');
  wb.replaceChildren(...(f.workers.length === 0 ? [el('span', { class: 'dim' }, f.forwarding ? 'no workers' : 'not forwarding (no --client-if)')] :
    f.workers.map((w) => el('span', { class: w.alive ? 'ok' : 'bad', style: 'margin-right:12px' }, 'worker ' + w.index + ' cpu ' + w.cpu + (w.alive ? ' up' : ' down') + (w.restarts ? ' (' + w.restarts + ' restarts)' : '')))));
}
function renderDecisions(f) {
  const tb = $('decisions-body');
  tb.replaceChildren();
  if (f.decisions.length === 0) { tb.append(el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No decisions recorded yet.'))); return; }
  for (const d of f.decisions) {
    tb.append(el('tr', { class: 'decision' },
      el('td', { class: 'time' }, new Date(d.timeMs).toLocaleTimeString('en-GB')),
      el('td', { class: 'client' }, el('span', { class: 'addr' }, d.client), el('div', { class: 'dim' }, d.service + ' ' + d.scheduler + (d.template === 'hit' ? ' (template)' : ''))),
      el('td', { class: 'outcome outcome-' + d.outcome }, d.dest ? '→ ' + d.dest : d.outcome),
      el('td', { class: 'cands' }, d.candidates.join('\\n'))));
  }
}
function renderDrops(f) {
  const box = $('drops');
  box.replaceChildren(...(f.drops.length === 0 ? [el('span', { class: 'dim' }, 'none')] : f.drops.map((d) => el('div', {}, el('span', { class: 'bad' }, d.count.toLocaleString('en-US')), ' ' + d.reason))));
  const t = f.telemetry;
  $('tracing').textContent = t ? t.decisionsTraced + ' traced, ' + t.exported + ' exported, ' + (t.queueDropped + t.ringLost + t.exportFailed) + ' dropped' : 'tracing off';
}
function render(f) {
  $('director').textContent = f.director;
  $('updated').textContent = 'updated ' + new Date(f.t).toLocaleTimeString('en-GB') + ' · table epoch ' + f.epoch;
  renderDirectors(f); renderServices(f); renderChecks(f); renderDecisions(f); renderDrops(f);
}
function point(f) {
  const d = {}, s = {};
  for (const svc of f.services) { s[svc.key] = [svc.cps, svc.inpps]; for (const x of svc.dests) d[x.key] = [x.cps, x.active, x.inactive, x.inpps]; }
  return { t: f.t, d, s };
}
function connect() {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => { $('status').textContent = 'live'; $('status').className = 'live'; });
  es.addEventListener('history', (e) => { history = JSON.parse(e.data); });
  es.addEventListener('frame', (e) => {
    const f = JSON.parse(e.data);
    if (history.length === 0 || history[history.length - 1].t !== f.t) history.push(point(f));
    while (history.length > 0 && history[0].t < f.t - MAX_WINDOW_MS) history.shift();
    // Plot the last minute at least, up to five as history accumulates.
    windowMs = Math.min(MAX_WINDOW_MS, Math.max(60 * 1000, history.length > 0 ? f.t - history[0].t : 0));
    render(f);
  });
  es.addEventListener('error', () => { $('status').textContent = 'reconnecting'; $('status').className = 'down'; });
}
connect();
`;

/** The monitor page (static: the data comes over /api/events). */
export const MONITOR_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tsvs monitor</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1>tsvs monitor</h1>
  <span>director <b id="director">…</b></span>
  <span id="status" class="down">connecting</span>
  <span id="updated" class="dim"></span>
</header>
<main>
  <div>
    <section class="panel"><h2>Virtual services</h2><div id="services"><p class="empty">Waiting for data…</p></div></section>
    <section class="panel"><h2>Health checks</h2><div id="checks"></div></section>
  </div>
  <div>
    <section class="panel"><h2>Directors</h2>
      <p id="cluster-head"></p>
      <table><thead><tr><th>Director</th><th>State</th><th class="n">Priority</th><th>VIPs held</th></tr></thead><tbody id="directors-body"></tbody></table>
      <p id="vip-owners"></p>
      <p id="cluster-note" class="dim"></p>
      <p id="health-summary" class="dim"></p>
      <div id="workers"></div>
    </section>
    <section class="panel"><h2>Latest decisions</h2>
      <table id="decisions"><thead><tr><th>Time</th><th>Client / service</th><th>Outcome</th><th>Candidates (weight active inactive overhead)</th></tr></thead><tbody id="decisions-body"></tbody></table>
      <p id="tracing" class="dim"></p>
    </section>
    <section class="panel"><h2>Drops</h2><div id="drops"></div></section>
  </div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
