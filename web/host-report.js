// Host console Report view: the room report, leads and referral ranking (GetRoomReport, ListLeads, GetReferralTree) drawn as plain SVG charts and tables.
import { $, h, replaceChildren, money, clockTime, duration } from './common.js';
import { rpc } from './host-panels.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// The concurrency curve: viewers at once per minute of the show, with the peak marked.
function concurrencyChart(report) {
  const values = report.concurrency_per_minute;
  const width = 600;
  const height = 160;
  const top = Math.max(1, ...values);
  const x = (i) => (values.length > 1 ? (i / (values.length - 1)) * (width - 40) : 0) + 30;
  const y = (v) => height - 20 - (v / top) * (height - 40);
  const chart = svg('svg', {
    id: 'report-concurrency', class: 'report-chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': 'Viewers at once per minute', 'data-minutes': values.length, 'data-peak': Math.max(0, ...values),
  });
  chart.append(
    svg('line', { x1: 30, y1: height - 20, x2: width - 10, y2: height - 20, class: 'axis' }),
    svg('text', { x: 2, y: y(top) + 4, class: 'tick' }, String(top)),
    svg('text', { x: 2, y: height - 16, class: 'tick' }, '0'),
    svg('text', { x: 30, y: height - 4, class: 'tick' }, report.start_ms ? clockTime(report.start_ms) : ''),
    svg('text', { x: width - 10, y: height - 4, class: 'tick end' }, `${values.length} min`));
  if (values.length) {
    chart.append(svg('polyline', { class: 'curve', points: values.map((v, i) => `${x(i)},${y(v)}`).join(' ') }));
    const peakAt = values.indexOf(Math.max(...values));
    chart.append(svg('circle', { class: 'peak', cx: x(peakAt), cy: y(values[peakAt]), r: 4 }, svg('title', {}, `peak ${values[peakAt]}`)));
  }
  return chart;
}

// Horizontal bars, one per item: `label(item)`, the bar's length from `value(item)` and the
// text after it from `text(item)`. Each row carries its value in data-value for checks.
function bars(id, items, { label, value, text }) {
  const rowHeight = 26;
  const width = 900;
  const labelWidth = 170;
  const top = Math.max(1, ...items.map(value));
  const chart = svg('svg', {
    id, class: 'report-chart bars', viewBox: `0 0 ${width} ${Math.max(1, items.length) * rowHeight + 4}`, role: 'img',
  });
  items.forEach((item, i) => {
    const v = value(item);
    const y = i * rowHeight + 2;
    const length = (v / top) * 300;
    chart.append(svg('g', { class: 'bar', 'data-label': label(item), 'data-value': v },
      svg('text', { x: 0, y: y + 16, class: 'label' }, label(item)),
      svg('rect', { x: labelWidth, y, width: Math.max(v > 0 ? 2 : 0, length), height: rowHeight - 6 }),
      svg('text', { x: labelWidth + length + 6, y: y + 16, class: 'value' }, text(item))));
  });
  if (!items.length) chart.append(svg('text', { x: 0, y: 18, class: 'label' }, 'nothing yet'));
  return chart;
}

const percent = (x) => `${(x * 100).toFixed(1)}%`;
const watched = (ms) => duration(ms);

function leadTable(ctx, leads) {
  const stage = (l) => ctx.client.enumName('LeadStage', l.stage).replace('LEAD_STAGE_', '').toLowerCase();
  return h('div', { class: 'table-wrap' }, h('table', { id: 'report-leads', class: 'orders-table' },
    h('thead', {}, h('tr', {}, ['Lead', 'Company', 'Tier', 'Stage', 'Score', 'Watch', 'Orders', 'Breakdown'].map((t) => h('th', {}, t)))),
    h('tbody', {}, leads.map((l) => h('tr', { dataset: { viewer: l.viewer_id, score: l.score.toFixed(1) } },
      h('td', {}, l.name || l.viewer_id),
      h('td', {}, l.company),
      h('td', {}, l.dealer_tier || '—'),
      h('td', { class: `lead-stage ${stage(l)}` }, stage(l)),
      h('td', { class: 'num' }, l.score.toFixed(1)),
      h('td', { class: 'num' }, watched(l.watch_ms)),
      h('td', { class: 'num' }, `${l.orders} · ${money(l.order_value_cents, ctx.room.currency)}`),
      h('td', { class: 'breakdown' }, l.breakdown.filter((b) => b.count > 0).map((b) => h('span', { dataset: { activity: b.activity } },
        `${b.activity} ×${b.count} = ${b.points.toFixed(1)}${b.raw > b.points + 1e-9 ? ` (capped from ${b.raw.toFixed(1)})` : ''}`))))))));
}

// Loads the three reports and draws them; a refusal shows its status and leaves the view as it was.
export async function renderReport(ctx) {
  const room = ctx.room.id;
  const [report, leads, tree] = await Promise.all([
    rpc(ctx, 'GetRoomReport', { room_id: room }),
    rpc(ctx, 'ListLeads', { room_id: room, limit: 50 }),
    rpc(ctx, 'GetReferralTree', { room_id: room }),
  ]);
  if (!report || !leads || !tree) return;
  const currency = report.currency || ctx.room.currency;
  const f = report.funnel || {};
  const funnel = [['registered', f.registered], ['watched', f.watched], ['applied', f.applied], ['verified dealers', f.verified_dealers], ['ordered', f.ordered]]
    .map(([name, n]) => ({ name, n: n || 0 }));
  const top = [...report.products].sort((a, b) => b.value_cents - a.value_cents || b.orders - a.orders).slice(0, 8);
  replaceChildren($('#report-body'),
    h('p', { id: 'report-summary', class: 'stats' },
      `${report.registered} registered · ${report.unique_viewers} watched · peak ${report.peak_concurrency} at once · `
      + `${watched(report.watch_ms_total)} watched in all · generated ${clockTime(report.generated_ms)}`),
    h('h3', {}, 'Viewers at once, per minute'), concurrencyChart(report),
    h('h3', {}, 'Brand segments: order value'),
    bars('report-segments', report.segments, {
      label: (s) => s.brand_name,
      value: (s) => s.value_cents,
      text: (s) => `${money(s.value_cents, currency)} · ${s.orders} orders · ${s.viewers} viewers · ${watched(s.watch_ms)} watched · ${percent(s.conversion)} bought`,
    }),
    h('h3', {}, 'Funnel'),
    bars('report-funnel', funnel, { label: (x) => x.name, value: (x) => x.n, text: (x) => String(x.n) }),
    h('h3', {}, 'Top products'),
    bars('report-products', top, {
      label: (p) => p.name,
      value: (p) => p.value_cents,
      text: (p) => `${money(p.value_cents, currency)} · ${p.orders} orders · ${p.quantity} units · ${p.clicks} clicks`,
    }),
    h('h3', {}, 'Invite ranking'),
    bars('report-referrals', tree.ranking.slice(0, 10), {
      label: (r) => r.name || r.viewer_id,
      value: (r) => r.direct_invitees,
      text: (r) => `${r.direct_invitees} invited · ${r.subtree_size} in all · ${r.subtree_orders} orders · ${money(r.subtree_value_cents, currency)}`,
    }),
    h('h3', {}, 'Leads'),
    leadTable(ctx, leads.leads));
}

export function setupReport(ctx) {
  $('#report-refresh').onclick = () => renderReport(ctx);
  replaceChildren($('#report-body'));
}
