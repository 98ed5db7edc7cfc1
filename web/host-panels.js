// Host console panels: running order and shelf, moments (flash sale, draw, red packet, announcement), orders (one by one and in bulk, CSV export), dealer applications, registrations waiting for approval, chat moderation, audience chart.
import { $, h, replaceChildren, money, clockTime, toast } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
const CHART_POINTS = 180;

// Runs one RPC; a refusal is shown with its gRPC status and message, and yields null.
export async function rpc(ctx, method, request, success) {
  try {
    const reply = await ctx.client.call(method, request);
    if (success) toast(typeof success === 'function' ? success(reply) : success);
    return reply;
  } catch (e) {
    toast(`${method}: ${e.codeName || 'error'} — ${e.message}`, 'error');
    return null;
  }
}

const cents = (value) => Math.round(Number(value) * 100);
const brandName = (ctx, id) => ctx.room.brands.find((b) => b.id === id)?.name || id;

// ---- Running order and shelf -----------------------------------------------------------------

export function renderBrands(ctx) {
  const { room } = ctx;
  replaceChildren($('#brands'), room.brands.map((b) => h('li', { class: b.id === room.brand_on_air ? 'on' : '', dataset: { brand: b.id } },
    h('span', {}, b.name),
    b.id === room.brand_on_air
      ? h('span', { class: 'badge live' }, 'On air')
      : h('button', { type: 'button', class: 'switch', onclick: () => switchBrand(ctx, b) }, 'Put on air'))));
  const camera = $('#camera-brand');
  const chosen = camera.value;
  replaceChildren(camera, room.brands.map((b) => h('option', { value: b.id }, b.name)));
  if (room.brands.some((b) => b.id === chosen)) camera.value = chosen;
  renderProducts(ctx);
}

async function switchBrand(ctx, brand) {
  const room = await rpc(ctx, 'SwitchBrand', { room_id: ctx.room.id, brand_id: brand.id }, `${brand.name} is on air`);
  if (room) ctx.setRoom(room);
}

export function renderProducts(ctx) {
  const { room } = ctx;
  const onAir = ctx.products.filter((p) => p.brand_id === room.brand_on_air);
  if (!onAir.length) {
    replaceChildren($('#products'), h('li', { class: 'empty' }, room.brand_on_air ? 'No products for this brand.' : 'No brand on air.'));
    return;
  }
  replaceChildren($('#products'), onAir.map((p) => {
    const pinned = p.id === room.pinned_product;
    return h('li', { class: pinned ? 'pinned' : '', dataset: { product: p.id } },
      h('span', { class: 'name' }, p.name),
      h('span', { class: 'note' }, p.prices.map((t) => `${t.tier} ${money(t.price_cents, room.currency)}`).join(' · ')),
      pinned
        ? h('button', { type: 'button', onclick: async () => { if (await rpc(ctx, 'UnpinProduct', { room_id: room.id }, 'Unpinned')) ctx.refreshRoom(); } }, 'Unpin')
        : h('button', { type: 'button', onclick: async () => { if (await rpc(ctx, 'PinProduct', { room_id: room.id, product_id: p.id }, `${p.name} pinned`)) ctx.refreshRoom(); } }, 'Pin'));
  }));
}

// ---- Moments ---------------------------------------------------------------------------------

const field = (label, attrs) => h('label', {}, label, h('input', { autocomplete: 'off', ...attrs }));

export function buildMomentForms(ctx) {
  const { room } = ctx;
  const saleForm = $('#sale-form');
  const productSelect = h('select', { name: 'product', 'aria-label': 'Product' });
  replaceChildren(saleForm,
    h('label', {}, 'Product', productSelect),
    field('Stock', { name: 'stock', type: 'number', min: '1', value: '10', required: true }),
    field('Per dealer', { name: 'limit', type: 'number', min: '1', value: '1', required: true }),
    room.tiers.map((t) => field(`Price ${t} (${room.currency})`, { name: `price_${t}`, type: 'number', min: '0', step: '0.01', required: true })),
    field('Starts in (s)', { name: 'starts_in', type: 'number', min: '0', value: '0' }),
    field('Duration (s)', { name: 'duration', type: 'number', min: '1', value: '300', required: true }),
    h('button', { type: 'submit' }, 'Start flash sale'));
  saleForm.onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(saleForm);
    const startsIn = Number(f.get('starts_in') || 0);
    await rpc(ctx, 'CreateFlashSale', {
      room_id: room.id, product_id: f.get('product'), stock: Number(f.get('stock')), per_dealer_limit: Number(f.get('limit')),
      prices: room.tiers.map((t) => ({ tier: t, price_cents: cents(f.get(`price_${t}`)) })),
      start_ms: startsIn > 0 ? ctx.clock.now() + startsIn * 1000 : 0, duration_seconds: Number(f.get('duration')),
    }, (sale) => `Flash sale ${sale.id} created`);
  };
  ctx.refreshSaleProducts = () => {
    const onAir = ctx.products.filter((p) => p.brand_id === room.brand_on_air);
    const list = onAir.length ? onAir : ctx.products;
    const chosen = productSelect.value;
    replaceChildren(productSelect, list.map((p) => h('option', { value: p.id }, `${p.name} (${brandName(ctx, p.brand_id)})`)));
    if (list.some((p) => p.id === chosen)) productSelect.value = chosen;
  };
  ctx.refreshSaleProducts();

  const drawForm = $('#draw-form');
  replaceChildren(drawForm,
    field('Prize', { name: 'prize', required: true, maxlength: '200' }),
    field('Winners', { name: 'winners', type: 'number', min: '1', value: '1', required: true }),
    field('Entry (s)', { name: 'seconds', type: 'number', min: '5', value: '60', required: true }),
    h('label', {}, 'Who may enter', h('select', { name: 'who' },
      h('option', { value: 'everyone' }, 'Everyone'), h('option', { value: 'dealers' }, 'Verified dealers'), h('option', { value: 'keyword' }, 'Chat a keyword'))),
    field('Keyword', { name: 'keyword', maxlength: '50' }),
    field('Beacon source (optional)', { name: 'beacon_source', maxlength: '200' }),
    h('button', { type: 'submit' }, 'Open lucky draw'));
  drawForm.onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(drawForm);
    const who = f.get('who');
    const eligibility = who === 'keyword' ? { keyword: f.get('keyword').trim() } : { [who]: {} };
    const draw = await rpc(ctx, 'CreateDraw', {
      room_id: room.id, prize: f.get('prize').trim(), winners: Number(f.get('winners')), entry_seconds: Number(f.get('seconds')),
      eligibility, beacon_source: f.get('beacon_source').trim(),
    }, (d) => `Lucky draw ${d.draw_id} open`);
    if (draw) ctx.refreshDraws();
  };

  const packetForm = $('#packet-form');
  replaceChildren(packetForm,
    field(`Total (${room.currency})`, { name: 'total', type: 'number', min: '0.01', step: '0.01', required: true }),
    field('Shares', { name: 'count', type: 'number', min: '1', value: '10', required: true }),
    field('Message', { name: 'message', maxlength: '200' }),
    field('Lasts (s, 0 = 5 min)', { name: 'duration', type: 'number', min: '0', value: '0' }),
    h('button', { type: 'submit' }, 'Drop red packet'));
  packetForm.onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(packetForm);
    await rpc(ctx, 'DropRedPacket', {
      room_id: room.id, total_cents: cents(f.get('total')), count: Number(f.get('count')), message: f.get('message').trim(),
      duration_seconds: Number(f.get('duration') || 0),
    }, (p) => `Red packet ${p.id} dropped`);
  };

  const announceForm = $('#announce-form');
  replaceChildren(announceForm, field('Text', { name: 'text', required: true, maxlength: '1000' }), h('button', { type: 'submit' }, 'Announce'));
  announceForm.onsubmit = async (e) => {
    e.preventDefault();
    const text = new FormData(announceForm).get('text').trim();
    if (await rpc(ctx, 'Announce', { room_id: room.id, text }, 'Announced')) announceForm.reset();
  };
}

export function renderDraws(ctx) {
  replaceChildren($('#draws'), ctx.draws.map((d) => {
    const state = d.drawn_ms ? 'drawn' : d.closed_ms ? 'awaiting beacon' : 'open';
    const beacon = h('input', { name: 'beacon', placeholder: 'beacon value', 'aria-label': 'Beacon value' });
    const close = async (value) => {
      if (await rpc(ctx, 'CloseDraw', { room_id: ctx.room.id, draw_id: d.draw_id, beacon: value }, `Draw ${d.draw_id}: ${value ? 'drawn' : 'entry closed'}`)) ctx.refreshDraws();
    };
    return h('li', { dataset: { draw: d.draw_id } },
      h('strong', {}, d.prize), ` · ${d.entrant_count} entrants · ${state}`,
      state === 'open' ? h('button', { type: 'button', onclick: () => close('') }, 'Close entry') : null,
      state === 'awaiting beacon' ? [beacon, h('button', { type: 'button', onclick: () => close(beacon.value.trim()) }, 'Draw')] : null,
      state === 'drawn' ? h('span', { class: 'note' }, ` winners: ${d.winners.join(', ') || '—'}`) : null);
  }));
}

// ---- Orders ----------------------------------------------------------------------------------

const ORDER_ACTIONS = {
  confirmed: { from: ['placed'], verb: 'confirmed', label: 'Confirm', bulk: '#bulk-confirm' },
  shipped: { from: ['confirmed'], verb: 'shipped', label: 'Ship', bulk: '#bulk-ship' },
  cancelled: { from: ['placed', 'confirmed'], verb: 'cancelled', label: 'Cancel', bulk: '#bulk-cancel' },
};

const orderStatus = (ctx, o) => ctx.client.enumName('OrderStatus', o.status).replace('ORDER_STATUS_', '').toLowerCase();

export function renderOrders(ctx) {
  const orders = [...ctx.orders.values()].sort((a, b) => b.created_ms - a.created_ms);
  ctx.selectedOrders ??= new Set();
  for (const id of ctx.selectedOrders) if (!ctx.orders.has(id)) ctx.selectedOrders.delete(id);
  replaceChildren($('#orders tbody'), orders.map((o) => {
    const status = orderStatus(ctx, o);
    const actions = Object.entries(ORDER_ACTIONS).filter(([, a]) => a.from.includes(status));
    return h('tr', { dataset: { order: o.id, status } },
      h('td', {}, h('input', {
        type: 'checkbox', class: 'pick', checked: ctx.selectedOrders.has(o.id), 'aria-label': `Select order ${o.id}`,
        onchange: (e) => { if (e.target.checked) ctx.selectedOrders.add(o.id); else ctx.selectedOrders.delete(o.id); renderSelection(ctx); },
      })),
      h('td', {}, o.id, o.sale_id ? h('span', { class: 'badge' }, 'flash') : null),
      h('td', {}, clockTime(o.created_ms)),
      h('td', {}, o.display_name || o.viewer_id),
      h('td', {}, o.tier),
      h('td', {}, o.product_name),
      h('td', { class: 'num' }, String(o.quantity)),
      h('td', { class: 'num' }, money(o.total_cents, o.currency)),
      h('td', { class: 'status' }, status),
      h('td', { class: 'order-actions' }, actions.map(([to, a]) => h('button', {
        type: 'button', class: `to-${to}`, onclick: () => updateOrders(ctx, [o], to),
      }, a.label))));
  }));
  const total = orders.filter((o) => orderStatus(ctx, o) !== 'cancelled').reduce((sum, o) => sum + o.total_cents, 0);
  $('#orders-total').textContent = orders.length ? `${orders.length} · ${money(total, ctx.room.currency)}` : 'none yet';
  renderSelection(ctx);
}

function renderSelection(ctx) {
  const chosen = [...ctx.selectedOrders].map((id) => ctx.orders.get(id)).filter(Boolean);
  $('#orders-selected').textContent = chosen.length ? `${chosen.length} selected` : 'none selected';
  for (const a of Object.values(ORDER_ACTIONS)) $(a.bulk).disabled = !chosen.some((o) => a.from.includes(orderStatus(ctx, o)));
  const all = $('#orders-all');
  all.checked = ctx.orders.size > 0 && chosen.length === ctx.orders.size;
  all.indeterminate = chosen.length > 0 && chosen.length < ctx.orders.size;
}

// Moves each order that can make the move, one call per order; orders that cannot (already
// shipped, say) are left alone and counted. Cancelling needs the reason typed above the table.
async function updateOrders(ctx, orders, to) {
  const action = ORDER_ACTIONS[to];
  let reason = '';
  if (to === 'cancelled') {
    reason = $('#bulk-reason').value.trim();
    if (!reason) {
      toast('Cancelling needs a reason: type it in the box above the orders', 'error');
      $('#bulk-reason').focus();
      return;
    }
  }
  const movable = orders.filter((o) => action.from.includes(orderStatus(ctx, o)));
  const skipped = orders.length - movable.length;
  const status = ctx.client.enumValue('OrderStatus', `ORDER_STATUS_${to.toUpperCase()}`);
  let done = 0;
  for (const o of movable) {
    try {
      const updated = await ctx.client.call('UpdateOrderStatus', { room_id: ctx.room.id, order_id: o.id, status, reason });
      ctx.orders.set(updated.id, updated);
      ctx.selectedOrders.delete(updated.id);
      done += 1;
    } catch (e) {
      toast(`Order ${o.id}: ${e.codeName || 'error'} — ${e.message}`, 'error');
    }
  }
  renderOrders(ctx);
  const what = orders.length === 1 ? `Order ${orders[0].id}` : `${done} order(s)`;
  if (done) toast(`${what} ${action.verb}${skipped ? ` (${skipped} skipped: not ${action.from.join(' or ')})` : ''}`);
  else if (skipped) toast(`None of the selected orders can be ${action.verb}`, 'error');
}

export function setupOrders(ctx) {
  ctx.selectedOrders = new Set();
  const selected = () => [...ctx.selectedOrders].map((id) => ctx.orders.get(id)).filter(Boolean);
  for (const [to, a] of Object.entries(ORDER_ACTIONS)) $(a.bulk).onclick = () => updateOrders(ctx, selected(), to);
  $('#orders-all').onchange = (e) => {
    ctx.selectedOrders = new Set(e.target.checked ? ctx.orders.keys() : []);
    renderOrders(ctx);
  };
  $('#orders-export').onclick = async () => {
    const r = await rpc(ctx, 'ExportReport', { room_id: ctx.room.id, kind: ctx.client.enumValue('ExportKind', 'EXPORT_KIND_ORDERS') });
    if (!r) return;
    const url = URL.createObjectURL(new Blob([r.csv], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', { href: url, download: r.filename || `${ctx.room.id}-orders.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(`Exported ${r.filename}`);
  };
}

// ---- Dealer applications ----------------------------------------------------------------------

export function renderApplications(ctx) {
  const pending = [...ctx.applications.values()].filter((a) => ctx.client.enumName('ApplicationStatus', a.status) === 'APPLICATION_STATUS_PENDING');
  if (!pending.length) {
    replaceChildren($('#applications'), h('li', { class: 'empty' }, 'No applications waiting.'));
    return;
  }
  replaceChildren($('#applications'), pending.map((a) => {
    const tier = h('select', { 'aria-label': 'Tier' }, ctx.room.tiers.map((t) => h('option', { value: t }, t)));
    const reason = h('input', { placeholder: 'reason', maxlength: '500', 'aria-label': 'Reason for rejecting' });
    const decide = async (method, request, verb) => {
      const decided = await rpc(ctx, method, { room_id: ctx.room.id, application_id: a.id, ...request }, `${a.display_name || a.viewer_id}: ${verb}`);
      if (decided) {
        ctx.applications.set(decided.id, decided);
        renderApplications(ctx);
      }
    };
    return h('li', { dataset: { application: a.id, viewer: a.viewer_id } },
      h('div', {}, h('strong', {}, a.company), ` · ${a.display_name || a.viewer_id}`),
      h('div', { class: 'note' }, `Licence ${a.licence_number} · ${a.contact} · ${clockTime(a.created_ms)}`),
      h('div', { class: 'row' },
        tier, h('button', { type: 'button', class: 'approve', onclick: () => decide('ApproveDealerApplication', { tier: tier.value }, `approved as ${tier.value}`) }, 'Approve'),
        reason, h('button', { type: 'button', class: 'reject', onclick: () => decide('RejectDealerApplication', { reason: reason.value.trim() }, 'rejected') }, 'Reject')));
  }));
}

// ---- Registrations waiting for the host's approval (approval mode) ----------------------------

export function renderRegistrations(ctx) {
  const pending = ctx.client.enumValue('RegistrationStatus', 'REGISTRATION_STATUS_PENDING');
  const waiting = [...ctx.registrations.values()].filter((r) => r.status === pending).sort((a, b) => a.created_ms - b.created_ms);
  $('#registrations-count').textContent = String(waiting.length);
  $('#registrations-count').hidden = !waiting.length;
  if (!waiting.length) {
    replaceChildren($('#registrations'), h('li', { class: 'empty' }, 'No registrations waiting.'));
    return;
  }
  replaceChildren($('#registrations'), waiting.map((r) => {
    const who = `${r.name || r.viewer_id}${r.company ? ` (${r.company})` : ''}`;
    const decide = async (method, verb) => {
      const decided = await rpc(ctx, method, { room_id: ctx.room.id, registration_id: r.id }, `${who}: ${verb}`);
      if (decided) {
        ctx.registrations.set(decided.id, decided);
        renderRegistrations(ctx);
      }
    };
    return h('li', { dataset: { registration: r.id, viewer: r.viewer_id } },
      h('div', {}, h('strong', {}, r.name || r.viewer_id), r.company ? ` · ${r.company}` : ''),
      h('div', { class: 'note' }, [r.phone, r.channel && `channel ${r.channel}`, r.inviter_id && `invited by ${r.inviter_id}`, clockTime(r.created_ms)].filter(Boolean).join(' · ')),
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'approve', onclick: () => decide('ApproveRegistration', 'approved') }, 'Approve'),
        h('button', { type: 'button', class: 'reject', onclick: () => decide('RejectRegistration', 'rejected') }, 'Reject')));
  }));
}

// ---- Chat and moderation ------------------------------------------------------------------------

export function renderChat(ctx) {
  const list = $('#host-chat');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  replaceChildren(list, ctx.chat.map((c) => h('li', { dataset: { id: c.id, viewer: c.viewer_id } },
    h('span', { class: c.is_dealer ? 'who dealer' : 'who' }, c.display_name || c.viewer_id), ' ', h('span', { class: 'text' }, c.text),
    h('span', { class: 'mod' },
      h('button', { type: 'button', title: 'Delete message', onclick: () => rpc(ctx, 'DeleteMessage', { room_id: ctx.room.id, message_id: c.id }, 'Message deleted') }, 'Delete'),
      h('button', { type: 'button', title: 'Mute for 10 minutes', onclick: () => rpc(ctx, 'MuteViewer', { room_id: ctx.room.id, viewer_id: c.viewer_id, duration_seconds: 600 }, `${c.display_name} muted for 10 min`) }, 'Mute'),
      h('button', { type: 'button', title: 'Remove from the room', onclick: () => rpc(ctx, 'KickViewer', { room_id: ctx.room.id, viewer_id: c.viewer_id, reason: 'removed by the host' }, `${c.display_name} removed`) }, 'Kick')))));
  if (nearBottom) list.scrollTop = list.scrollHeight;
  replaceChildren($('#actions'), ctx.actions.slice(-20).reverse().map((a) => h('li', {},
    `${clockTime(a.at_ms)} ${a.action}`, a.viewer_id ? ` ${a.viewer_id}` : '', a.detail ? ` — ${a.detail}` : '')));
}

// ---- Audience -----------------------------------------------------------------------------------

export function recordStats(ctx, stats) {
  ctx.stats.push(stats);
  if (ctx.stats.length > CHART_POINTS) ctx.stats.shift();
  $('#stats').textContent = `${stats.online} online · peak ${stats.peak_online} · ${stats.dealers_online} dealers · ${stats.chat_per_minute} chats/min · ${stats.likes} likes`;
  const chart = $('#chart');
  const top = Math.max(1, ...ctx.stats.map((s) => s.peak_online));
  const line = (pick, cls) => {
    const points = ctx.stats.map((s, i) => `${(i / (CHART_POINTS - 1)) * 300},${100 - (pick(s) / top) * 95}`).join(' ');
    const el = document.createElementNS(SVG, 'polyline');
    el.setAttribute('points', points);
    el.setAttribute('class', cls);
    return el;
  };
  chart.replaceChildren(line((s) => s.peak_online, 'peak'), line((s) => s.online, 'online'), line((s) => s.dealers_online, 'dealers'));
}
