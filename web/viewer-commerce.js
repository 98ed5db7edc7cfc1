// Viewer page commerce: the shelf (tier prices and ordering for verified dealers, the dealer application for everyone else), flash sales, lucky draws with their verify view, red packets.
import { $, h, replaceChildren, money, duration, clientKey, toast } from './common.js';

// What each memoised element was last built from (kept out of the DOM).
const builtFrom = new WeakMap();

// Rebuilds `el` only when what it shows changed, so typing in a form is not interrupted.
function memo(el, key, build) {
  const k = JSON.stringify(key);
  if (builtFrom.get(el) === k) return;
  builtFrom.set(el, k);
  replaceChildren(el, build());
}

const isDealer = (state) => state.you?.role === 'dealer';

// ---- Events ---------------------------------------------------------------------------------

function upsert(map, id, fields) { map.set(id, { ...(map.get(id) || {}), ...fields }); }
function forgetLater(map, id, ms) { setTimeout(() => map.delete(id), ms); }

export const commerceHandlers = {
  product_pinned(m, { state }) { state.pinned = m.product.id; },
  product_unpinned(m, { state }) { if (state.pinned === m.product_id) state.pinned = null; },
  product_updated(m, { state }) {
    const i = state.shelf.findIndex((p) => p.id === m.product.id);
    if (i >= 0) state.shelf[i] = m.product;
    else if (state.brandOnAir && m.product.brand_id === state.brandOnAir.id) state.shelf.push(m.product);
  },
  product_removed(m, { state }) { state.shelf = state.shelf.filter((p) => p.id !== m.product_id); },
  dealer_application_received(m, { state }) { state.application = { id: m.application_id, status: m.status }; },
  application_result(m, { state }) {
    state.application = { id: m.application_id, status: m.status, reason: m.reason };
    if (m.status === 'rejected') toast(`Your dealer application was not approved: ${m.reason}`, 'error');
  },
  order_placed(m, { state }) {
    state.orders.set(m.order.id, m.order);
    toast(`Order ${m.order.id} placed: ${m.order.product_name} × ${m.order.quantity}`);
  },
  order_status(m, { state }) { state.orders.set(m.order.id, m.order); },
  sale_scheduled(m, { state }) { upsert(state.sales, m.sale_id, m); },
  sale_started(m, { state }) { upsert(state.sales, m.sale_id, m); },
  stock_left(m, { state }) { if (state.sales.has(m.sale_id)) upsert(state.sales, m.sale_id, { remaining: m.remaining }); },
  sold_out(m, { state }) { if (state.sales.has(m.sale_id)) upsert(state.sales, m.sale_id, { remaining: 0, phase: 'sold_out' }); },
  sale_ended(m, { state }) {
    if (!state.sales.has(m.sale_id)) return;
    upsert(state.sales, m.sale_id, { phase: 'ended', sold: m.sold });
    forgetLater(state.sales, m.sale_id, 60000);
  },
  grab_result(m, { state }) {
    upsert(state.sales, m.sale_id, { result: m, pendingKey: null });
    if (m.result === 'won') toast(`You got one! Order ${m.order_id}`);
  },
  draw_opened(m, { state }) { upsert(state.draws, m.draw_id, { ...m, state: 'open', entrant_count: 0 }); },
  draw_entered(m, { state }) { upsert(state.draws, m.draw_id, { entered: true, entrant_count: m.entrant_count }); },
  draw_closed(m, { state }) {
    upsert(state.draws, m.draw_id, {
      state: m.awaiting_beacon ? 'awaiting_beacon' : 'closed', entrants_hash: m.entrants_hash,
      entrant_count: m.entrant_count, beacon_source: m.beacon_source,
    });
  },
  draw_result(m, { state }) {
    upsert(state.draws, m.draw_id, { state: 'drawn', seed: m.seed, beacon: m.beacon, winners: m.winners, entrants_hash: m.entrants_hash });
  },
  draw_won(m, { state }) {
    upsert(state.draws, m.draw_id, { won: true });
    toast(`You won the lucky draw: ${m.prize}!`);
  },
  red_packet(m, { state }) { upsert(state.packets, m.packet_id, { ...m, left: m.count }); },
  red_packet_gone(m, { state }) {
    if (!state.packets.has(m.packet_id)) return;
    upsert(state.packets, m.packet_id, { gone: m.reason, left: 0 });
    forgetLater(state.packets, m.packet_id, 30000);
  },
  red_packet_result(m, { state }) {
    upsert(state.packets, m.packet_id, { result: m });
    toast(`Red packet: you got ${money(m.amount_cents, m.currency)}`);
  },
};

// ---- Rendering ------------------------------------------------------------------------------

export function renderCommerce(ctx) {
  const { state } = ctx;
  memo($('#dealer-note'), [state.you?.role, state.you?.tier], () => (isDealer(state)
    ? `Verified dealer · ${state.you.tier} tier — the prices shown are yours.`
    : 'Prices and ordering are for verified dealers.'));
  memo($('#shelf'), [state.shelf, state.pinned, state.you?.role, state.you?.tier], () => shelf(ctx));
  memo($('#apply'), [state.you?.role, state.application], () => (isDealer(state) ? [] : applyForm(ctx)));
  memo($('#my-orders'), [...state.orders.values()], () => myOrders(state));
  memo($('#moments'), [[...state.sales.values()], [...state.draws.values()], [...state.packets.values()], state.you?.role],
    () => [...[...state.sales.values()].map((s) => saleCard(s, ctx)),
      ...[...state.draws.values()].map((d) => drawCard(d, ctx)),
      ...[...state.packets.values()].map((p) => packetCard(p, ctx))]);
  tickCountdowns(ctx);
}

// Every element with data-until shows the time left until then, by the server's clock.
export function tickCountdowns({ clock }) {
  for (const el of document.querySelectorAll('[data-until]')) {
    el.textContent = duration(Number(el.dataset.until) - clock.now());
  }
}

function shelf(ctx) {
  const { state } = ctx;
  if (!state.shelf.length) return [h('li', { class: 'empty' }, state.brandOnAir ? 'Nothing on the shelf yet.' : 'The shelf opens with the first brand.')];
  const pinnedFirst = [...state.shelf].sort((a, b) => (b.id === state.pinned) - (a.id === state.pinned));
  return pinnedFirst.map((p) => productCard(p, ctx));
}

// Engagement for the host's reports (docs/reports.md): a tap on a card is a `product_view`
// (once per product per 30 s from this page), following a link a `product_click`.
const viewedAt = new Map();
function viewed(id, { send }) {
  const now = Date.now();
  if (now - (viewedAt.get(id) ?? -Infinity) < 30_000) return;
  viewedAt.set(id, now);
  send({ type: 'product_view', product_id: id });
}

function productCard(p, ctx) {
  const pinned = p.id === ctx.state.pinned;
  // A price is shown only when the server sent one, which it does for verified dealers only.
  const priced = p.price_cents !== undefined;
  const onclick = (e) => { if (!e.target.closest('a, form, button, input')) viewed(p.id, ctx); };
  return h('li', { class: pinned ? 'product pinned' : 'product', dataset: { product: p.id }, onclick },
    p.image_urls?.[0] ? h('img', { src: p.image_urls[0], alt: '', loading: 'lazy' }) : h('div', { class: 'thumb' }, p.name.slice(0, 1)),
    h('div', { class: 'info' },
      pinned ? h('span', { class: 'pin' }, 'Pinned') : null,
      h('h3', {}, p.name),
      p.description ? h('p', { class: 'desc' }, p.description) : null,
      h('p', { class: 'moq' }, `Minimum order ${p.min_order_quantity}`),
      priced
        ? [h('p', { class: 'price' }, money(p.price_cents, p.currency), h('small', {}, ` ${ctx.state.you.tier} price`)),
          p.link ? h('a', { href: p.link, target: '_blank', rel: 'noopener noreferrer', class: 'link', onclick: () => ctx.send({ type: 'product_click', product_id: p.id }) }, 'Product page ↗') : null,
          orderForm(p, ctx)]
        : h('p', { class: 'locked' }, 'Price for verified dealers')));
}

function orderForm(p, { send }) {
  const quantity = h('input', { type: 'number', name: 'quantity', min: String(p.min_order_quantity), step: '1', value: String(p.min_order_quantity), 'aria-label': `Quantity of ${p.name}` });
  return h('form', {
    class: 'order-form',
    onsubmit: (e) => {
      e.preventDefault();
      const n = Number(quantity.value);
      if (!Number.isInteger(n) || n < p.min_order_quantity) {
        toast(`Order at least ${p.min_order_quantity} of ${p.name}`, 'error');
        return;
      }
      send({ type: 'place_order', product_id: p.id, quantity: n, key: clientKey('order') });
    },
  }, quantity, h('button', { type: 'submit' }, 'Order'));
}

function applyForm({ state, send }) {
  const a = state.application;
  if (a?.status === 'pending') return [h('p', { class: 'application pending' }, `Your dealer application ${a.id} is waiting for review.`)];
  if (a?.status === 'approved') return [h('p', { class: 'application' }, 'Your application was approved.')];
  const field = (label, name, max) => h('label', {}, label, h('input', { name, required: true, maxlength: String(max), autocomplete: 'off' }));
  return [h('form', {
    class: 'apply-form',
    onsubmit: (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      send({ type: 'dealer_application', company: f.get('company').trim(), licence_number: f.get('licence_number').trim(), contact: f.get('contact').trim() });
    },
  },
  h('h3', {}, 'Apply to become a verified dealer'),
  a?.status === 'rejected' ? h('p', { class: 'error' }, `Not approved: ${a.reason}`) : null,
  field('Company', 'company', 200), field('Business licence number', 'licence_number', 100), field('Contact', 'contact', 200),
  h('button', { type: 'submit' }, 'Send application'))];
}

function myOrders(state) {
  const orders = [...state.orders.values()];
  if (!orders.length) return [];
  return [h('h3', {}, 'Your orders'), h('ul', { class: 'orders' }, orders.map((o) => h('li', { dataset: { order: o.id } },
    `${o.id} · ${o.product_name} × ${o.quantity} · ${money(o.total_cents, o.currency)} · ${o.status}`)))];
}

const GRAB_RESULTS = {
  won: (r) => `You got one at ${money(r.price_cents, r.currency)} — order ${r.order_id}`,
  sold_out: () => 'Sold out — better luck next time',
  limit_reached: () => 'You already have your share of this sale',
  not_started: () => 'Not started yet',
  ended: () => 'This sale has ended',
  not_eligible: () => 'Your tier does not take part in this sale',
};

function saleCard(s, { state, send }) {
  const live = s.phase === 'live';
  const won = s.result?.result === 'won';
  const when = {
    scheduled: ['Starts in ', h('span', { dataset: { until: String(s.start_ms) } })],
    live: ['Ends in ', h('span', { dataset: { until: String(s.end_ms) } })],
    sold_out: ['Sold out'],
    ended: [`Ended — ${s.sold ?? s.stock - s.remaining} of ${s.stock} sold`],
  }[s.phase] || [s.phase];
  const grab = () => {
    // A grab that got no answer (e.g. the connection dropped) is retried with the same key.
    const key = s.pendingKey || clientKey('grab');
    if (send({ type: 'grab', sale_id: s.sale_id, key })) upsert(state.sales, s.sale_id, { pendingKey: key });
  };
  return h('article', { class: `moment sale phase-${s.phase}`, dataset: { sale: s.sale_id } },
    h('h3', {}, h('span', { class: 'tag' }, 'Flash sale'), s.product_name),
    h('p', { class: 'when' }, ...when),
    h('p', {}, h('meter', { min: '0', max: String(s.stock), value: String(s.remaining) }), ` ${s.remaining} of ${s.stock} left`),
    s.eligible && s.price_cents !== undefined ? h('p', { class: 'price' }, `Sale price ${money(s.price_cents, s.currency)}`) : null,
    s.eligible
      ? h('button', { type: 'button', class: 'grab', disabled: !live || won || s.remaining === 0, onclick: grab }, won ? 'Got it!' : 'Grab')
      : h('p', { class: 'locked' }, isDealer(state) ? 'Your tier does not take part in this sale.' : 'For verified dealers'),
    s.result ? h('p', { class: `result ${s.result.result}`, role: 'status' }, GRAB_RESULTS[s.result.result]?.(s.result) || s.result.result) : null);
}

function eligibilityText(e) {
  switch (e?.kind) {
    case 'dealers': return 'Verified dealers';
    case 'tiers': return `Dealers of tiers ${e.tiers.join(', ')}`;
    case 'keyword': return `Chat “${e.keyword}” to enter`;
    case 'watched_minutes': return `Everyone who watched ${e.minutes}+ minutes`;
    default: return 'Everyone in the room';
  }
}

function drawCard(d, { send }) {
  const byKeyword = d.eligibility?.kind === 'keyword';
  const status = {
    open: [h('p', { class: 'when' }, 'Entry closes in ', h('span', { dataset: { until: String(d.closes_ms) } })),
      d.entered ? h('p', { class: 'result' }, `You're in · ${d.entrant_count} entered`)
        : byKeyword ? null : h('button', { type: 'button', class: 'enter', onclick: () => send({ type: 'enter_draw', draw_id: d.draw_id }) }, 'Enter the draw')],
    awaiting_beacon: [h('p', {}, `Entry closed · ${d.entrant_count} entrants · waiting for the beacon (${d.beacon_source})`)],
    closed: [h('p', {}, `Entry closed · ${d.entrant_count} entrants`)],
    drawn: [h('p', { class: d.won ? 'result won' : 'result' }, d.won ? 'You won!' : 'Winners drawn'),
      h('ol', { class: 'winners' }, (d.winners || []).map((w) => h('li', {}, w.display_name || w.viewer_id)))],
  }[d.state] || [];
  return h('article', { class: `moment draw state-${d.state}`, dataset: { draw: d.draw_id } },
    h('h3', {}, h('span', { class: 'tag' }, 'Lucky draw'), d.prize),
    h('p', { class: 'note' }, `${d.winners_count} winner${d.winners_count === 1 ? '' : 's'} · ${eligibilityText(d.eligibility)}`),
    ...status,
    verifyView(d));
}

// The published record, and a check anyone can do here: SHA-256(seed) must be the commitment
// announced when the draw opened. Recomputing the winners needs the entrant list
// (`showfloor verify-draw` on the record from GetDrawRecord, see docs/draws.md).
function verifyView(d) {
  const outcome = h('p', { class: 'verify-outcome', role: 'status' });
  const row = (k, v) => [h('dt', {}, k), h('dd', {}, v || '—')];
  const check = async () => {
    if (!crypto.subtle) {
      outcome.textContent = 'This browser checks only over HTTPS; use `showfloor verify-draw`.';
      return;
    }
    const seed = Uint8Array.from(d.seed.match(/../g).map((x) => parseInt(x, 16)));
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', seed));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    const ok = hex === d.commitment;
    outcome.className = ok ? 'verify-outcome ok' : 'verify-outcome bad';
    outcome.textContent = ok ? '✓ SHA-256(seed) equals the commitment published at the start.' : `✗ SHA-256(seed) is ${hex}, not the commitment.`;
  };
  return h('details', { class: 'verify' },
    h('summary', {}, 'Verify this draw'),
    h('dl', {},
      row('Algorithm', d.algorithm), row('Commitment', d.commitment), row('Entrants hash', d.entrants_hash),
      row('Beacon source', d.beacon_source), row('Beacon', d.beacon), row('Seed', d.seed),
      row('Winners', (d.winners || []).map((w) => w.viewer_id).join(', '))),
    d.seed ? h('button', { type: 'button', onclick: check }, 'Check the seed') : h('p', { class: 'note' }, 'The seed is revealed when the winners are drawn.'),
    outcome);
}

function packetCard(p, { send }) {
  const open = !p.gone && !p.result;
  return h('article', { class: 'moment packet', dataset: { packet: p.packet_id } },
    h('h3', {}, h('span', { class: 'tag' }, 'Red packet'), p.message || 'For everyone here'),
    h('p', {}, `${money(p.total_cents, p.currency)} in ${p.count} shares`, p.tiers?.length ? ` · for ${p.tiers.join(', ')} dealers` : ''),
    p.gone ? h('p', { class: 'note' }, p.gone === 'empty' ? 'All shares taken' : 'Expired')
      : h('p', { class: 'when' }, 'Expires in ', h('span', { dataset: { until: String(p.expires_ms) } })),
    p.result ? h('p', { class: 'result won' }, `You got ${money(p.result.amount_cents, p.result.currency)}`)
      : h('button', { type: 'button', class: 'grab-packet', disabled: !open, onclick: () => send({ type: 'grab_red_packet', packet_id: p.packet_id }) }, 'Open it'));
}
