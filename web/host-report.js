// Host console Report view: the room report, leads and referral ranking (GetRoomReport, ListLeads, GetReferralTree) drawn as plain SVG charts and tables, with flash-sale forensics, lucky draws (and their published records, ListDraws) and red packets.
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

// "Name (Company)", else the viewer id: someone in a report, as the room knows them.
const person = (p) => {
  if (!p) return '—';
  if (!p.name && !p.company) return p.viewer_id;
  return `${p.name || p.viewer_id}${p.company ? ` (${p.company})` : ''}`;
};

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// A two-column table of figures: [label, text, data key, value] rows; each row carries its
// value in data-value, under data-figure, for checks.
function figures(rows) {
  return h('tbody', {}, rows.map(([label, text, key, value]) => h('tr', { dataset: { figure: key, value: String(value) } },
    h('th', { scope: 'row' }, label), h('td', { class: 'num' }, text))));
}

// People with a number each (winners with their units, misses with their attempts).
function people(title, cls, list, count) {
  return h('div', { class: `report-people ${cls}` }, h('h4', {}, title),
    list.length
      ? h('ol', {}, list.map((x) => h('li', { dataset: { viewer: x.person?.viewer_id || '', count: String(count(x)) } }, `${person(x.person)} · ${count(x)}`)))
      : h('p', { class: 'note' }, 'nobody'));
}

// One table per flash sale: stock against attempts and wins, how fast it sold out, who won
// and which dealers tried and missed (the sales calls to make).
function flashSales(report, currency) {
  if (!report.flash_sales.length) return h('p', { class: 'note' }, 'No flash sales.');
  return report.flash_sales.map((s) => h('section', { class: 'report-sale', dataset: { sale: s.sale_id, attempters: String(s.attempters) } },
    h('h4', {}, `${s.product_name || s.product_id} · ${s.sale_id} · ${clockTime(s.start_ms)}`),
    h('table', { class: 'orders-table figures' }, figures([
      ['Stock', String(s.stock), 'stock', s.stock],
      ['Sold', `${s.sold} of ${s.stock}`, 'sold', s.sold],
      ['Grabs tried', `${s.attempts} by ${s.attempters} dealer(s)`, 'attempts', s.attempts],
      ['Time to sell out', s.sold_out_ms ? seconds(s.sold_out_ms - s.start_ms) : 'did not sell out', 'sold-out-ms', s.sold_out_ms ? s.sold_out_ms - s.start_ms : 0],
      ['Revenue', money(s.revenue_cents, currency), 'revenue', s.revenue_cents],
    ])),
    h('div', { class: 'row' },
      people('Winners (units)', 'winners', s.winners, (w) => w.units),
      people('Tried and missed (grabs)', 'missed', s.missed, (m) => m.attempts))));
}

// Draws with entrants and winners, and what anyone needs to check them: the commitment
// published at open, the entrants hash, the beacon and the revealed seed (ListDraws' records).
function draws(report, records) {
  if (!report.draws.length) return h('p', { class: 'note' }, 'No lucky draws.');
  return h('div', { class: 'table-wrap' }, h('table', { id: 'report-draws', class: 'orders-table' },
    h('thead', {}, h('tr', {}, ['Draw', 'Prize', 'Opened', 'Entrants', 'Winners', 'Verification'].map((t) => h('th', {}, t)))),
    h('tbody', {}, report.draws.map((d) => {
      const r = records.find((x) => x.draw_id === d.draw_id);
      const state = d.drawn_ms ? 'drawn' : d.closed_ms ? 'entry closed' : 'open';
      return h('tr', { dataset: { draw: d.draw_id, entrants: String(d.entrants), winners: String(d.winners.length) } },
        h('td', {}, d.draw_id, h('span', { class: 'note' }, ` ${state}`)),
        h('td', {}, d.prize),
        h('td', {}, clockTime(d.opened_ms)),
        h('td', { class: 'num' }, String(d.entrants)),
        h('td', { class: 'wrap' }, d.winners.length ? d.winners.map(person).join(', ') : '—'),
        h('td', { class: 'verify' }, r ? [
          h('div', {}, 'commitment ', h('code', { class: 'commitment' }, r.commitment)),
          r.entrants_hash ? h('div', {}, 'entrants hash ', h('code', {}, r.entrants_hash)) : null,
          r.beacon ? h('div', {}, 'beacon ', h('code', {}, r.beacon)) : null,
          h('div', {}, 'seed ', r.seed ? h('code', { class: 'seed' }, r.seed) : 'not revealed yet'),
        ] : '—'));
    }))));
}

function redPackets(report, currency) {
  if (!report.red_packets.length) return h('p', { class: 'note' }, 'No red packets.');
  return h('div', { class: 'table-wrap' }, h('table', { id: 'report-packets', class: 'orders-table' },
    h('thead', {}, h('tr', {}, ['Packet', 'Message', 'Dropped', 'Amount', 'Grabbed', 'Shares', 'Largest grabs'].map((t) => h('th', {}, t)))),
    h('tbody', {}, report.red_packets.map((p) => h('tr', {
      dataset: { packet: p.packet_id, total: String(p.total_cents), grabbedCents: String(p.grabbed_cents), grabbed: String(p.grabbed), count: String(p.count) },
    },
    h('td', {}, p.packet_id),
    h('td', {}, p.message),
    h('td', {}, clockTime(p.created_ms)),
    h('td', { class: 'num' }, money(p.total_cents, currency)),
    h('td', { class: 'num' }, money(p.grabbed_cents, currency)),
    h('td', { class: 'num' }, `${p.grabbed} of ${p.count}`),
    h('td', { class: 'wrap' }, p.grabs.slice(0, 5).map((g) => `${person(g.person)} ${money(g.amount_cents, currency)}`).join(', ') || '—'))))));
}

// Loads the reports (and the draws' records) and draws them; a refusal shows its status and leaves the view as it was.
export async function renderReport(ctx) {
  const room = ctx.room.id;
  const [report, leads, tree, drawRecords] = await Promise.all([
    rpc(ctx, 'GetRoomReport', { room_id: room }),
    rpc(ctx, 'ListLeads', { room_id: room, limit: 50 }),
    rpc(ctx, 'GetReferralTree', { room_id: room }),
    rpc(ctx, 'ListDraws', { room_id: room }),
  ]);
  if (!report || !leads || !tree || !drawRecords) return;
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
    h('h3', {}, 'Flash sales'),
    h('div', { id: 'report-sales' }, flashSales(report, currency)),
    h('h3', {}, 'Lucky draws'),
    draws(report, drawRecords.draws),
    h('h3', {}, 'Red packets'),
    redPackets(report, currency),
    h('h3', {}, 'Leads'),
    leadTable(ctx, leads.leads));
}

export function setupReport(ctx) {
  $('#report-refresh').onclick = () => renderReport(ctx);
  replaceChildren($('#report-body'));
}
