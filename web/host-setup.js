// Host console set-up panels: a new room, brands in running order, the catalogue (CSV import with a dry run, adding and editing products one by one), dealer import, viewer and channel links.
import { $, h, replaceChildren, money, toast } from './common.js';
import { rpc } from './host-panels.js';

// ---- A new room -----------------------------------------------------------------------------

// Tier names as typed ("gold, silver bronze"): the server checks them and names a bad one.
const tierList = (text) => text.split(/[\s,]+/).map((t) => t.trim().toLowerCase()).filter(Boolean);

// The create-room form; `onCreated(room)` opens the new room.
export function setupCreateRoom(client, onCreated) {
  const form = $('#create-room-form');
  const error = $('#create-room-error');
  form.onsubmit = async (e) => {
    e.preventDefault();
    error.textContent = '';
    const f = new FormData(form);
    const start = f.get('start');
    const startMs = start ? new Date(start).getTime() : 0;
    if (Number.isNaN(startMs)) {
      error.textContent = 'Starts: not a date and time';
      return;
    }
    try {
      const created = await client.call('CreateRoom', {
        title: f.get('title').trim(),
        scheduled_start_ms: startMs,
        tiers: tierList(f.get('tiers')),
        currency: f.get('currency').trim().toUpperCase(),
        registration: client.enumValue('RegistrationMode', f.get('registration')),
        phone_country: f.get('phone_country').trim().toUpperCase(),
      });
      form.reset();
      $('#create-room').hidden = true;
      toast(`Room ${created.room.title} created (${created.room.id})`);
      await onCreated(created.room);
    } catch (err) {
      error.textContent = `${err.codeName || 'error'}: ${err.message}`;
    }
  };
  $('#create-room-cancel').onclick = () => {
    $('#create-room').hidden = true;
    error.textContent = '';
  };
}

// ---- Brands ---------------------------------------------------------------------------------

export function setupBrandForm(ctx) {
  const form = $('#brand-form');
  form.onsubmit = async (e) => {
    e.preventDefault();
    const name = new FormData(form).get('name').trim();
    const brand = await rpc(ctx, 'AddBrand', { room_id: ctx.room.id, name }, (b) => `${b.name} added to the running order`);
    if (brand) {
      form.reset();
      await ctx.refreshRoom();
    }
  };
}

// ---- CSV imports: check first (dry run), then import what was checked -------------------------

// One import panel: `method` (ImportCatalog or ImportDealers), the ids of its elements, how a
// good answer is summed up, and what to do once imported.
function importPanel(ctx, { method, prefix, summary, imported }) {
  const form = $(`#${prefix}-form`);
  const file = $(`#${prefix}-file`);
  const importButton = $(`#${prefix}-import`);
  const result = $(`#${prefix}-result`);
  const errors = $(`#${prefix}-errors`);
  let checked = null;
  const reset = () => {
    checked = null;
    importButton.disabled = true;
    result.textContent = '';
    result.dataset.state = '';
    replaceChildren(errors);
  };
  const showErrors = (reply) => {
    result.dataset.state = 'bad';
    result.textContent = `${reply.errors.length} bad row(s): nothing ${reply.dry_run ? 'will be' : 'was'} imported until they are fixed.`;
    replaceChildren(errors, reply.errors.map((e) => h('li', { dataset: { line: String(e.line), field: e.field } },
      h('strong', {}, e.line ? `Line ${e.line}` : 'File'), e.field ? ` · ${e.field}` : '', ` — ${e.reason}`)));
  };
  const read = async () => {
    const chosen = file.files[0];
    if (!chosen) throw new Error('choose a CSV file first');
    return chosen.text();
  };
  const send = async (csv, dryRun) => {
    const reply = await rpc(ctx, method, { room_id: ctx.room.id, csv, dry_run: dryRun });
    if (!reply) return null;
    if (reply.errors.length) {
      checked = null;
      importButton.disabled = true;
      showErrors(reply);
      return null;
    }
    replaceChildren(errors);
    return reply;
  };
  file.onchange = reset;
  form.onsubmit = async (e) => {
    e.preventDefault();
    reset();
    let csv;
    try { csv = await read(); } catch (err) { result.textContent = err.message; return; }
    const reply = await send(csv, true);
    if (!reply) return;
    checked = csv;
    importButton.disabled = false;
    result.dataset.state = 'good';
    result.textContent = `Checked: ${summary(reply)}. Nothing written yet.`;
  };
  importButton.onclick = async () => {
    let csv;
    try { csv = await read(); } catch (err) { result.textContent = err.message; return; }
    if (csv !== checked) {
      reset();
      result.textContent = 'The file changed since it was checked: check it again.';
      return;
    }
    importButton.disabled = true;
    const reply = await send(csv, false);
    if (!reply) return;
    checked = null;
    result.dataset.state = 'done';
    result.textContent = `Imported: ${summary(reply)}.`;
    toast(`Imported: ${summary(reply)}`);
    await imported(reply);
  };
  return reset;
}

// ---- Catalogue --------------------------------------------------------------------------------

// Decimal currency to cents, as the catalogue file writes prices: "12.50", "12.5", "12".
export function priceCents(text) {
  const v = String(text).trim();
  if (!/^\d+(\.\d{1,2})?$/.test(v)) return null;
  const [whole, frac = ''] = v.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}

const decimal = (cents) => (cents / 100).toFixed(2);

export function setupCatalog(ctx) {
  const { room } = ctx;
  $('#catalog-columns').textContent = ['brand', 'name', 'description', 'image_urls', 'link', 'min_order_quantity',
    ...room.tiers.map((t) => `price_${t}`)].join(',');
  importPanel(ctx, {
    method: 'ImportCatalog',
    prefix: 'catalog',
    summary: (r) => {
      const updated = r.products.filter((p) => p.existing).length;
      const brands = r.new_brands.map((b) => b.name).join(', ');
      return `${r.products.length} product(s), ${r.products.length - updated} new and ${updated} updated`
        + (brands ? `; new brand(s) ${brands}` : '');
    },
    imported: async () => {
      await ctx.refreshRoom();
      await ctx.refreshProducts();
    },
  });
  $('#product-form').hidden = true;
  $('#product-new').onclick = () => productForm(ctx, null);
}

export function renderCatalog(ctx) {
  const { room } = ctx;
  const byBrand = room.brands.map((b) => ({ brand: b, products: ctx.products.filter((p) => p.brand_id === b.id) }));
  const items = byBrand.flatMap(({ brand, products }) => products.map((p) => h('li', { dataset: { product: p.id } },
    h('span', { class: 'name' }, `${brand.name} · ${p.name}`),
    h('span', { class: 'note' }, `moq ${p.min_order_quantity} · ${p.prices.map((t) => `${t.tier} ${money(t.price_cents, room.currency)}`).join(' · ')}`),
    h('button', { type: 'button', class: 'edit', onclick: () => productForm(ctx, p) }, 'Edit'))));
  replaceChildren($('#catalog-products'), items.length ? items : h('li', { class: 'empty' }, 'No products yet: import a catalogue or add one.'));
  $('#product-new').disabled = !room.brands.length;
  $('#product-new').title = room.brands.length ? '' : 'Add a brand first';
}

// What the product form holds, checked as UpsertProduct checks it (validate.rs), so that a
// mistake is named at its field before anything is sent: the request, or the first problem.
const MAX_IMAGES = 20;
function productRequest(room, f) {
  const name = f.get('name').trim();
  if (!f.get('brand')) return { error: 'Brand: add a brand to the running order first' };
  if (name.length < 1 || name.length > 200) return { error: 'Name: 1 to 200 characters' };
  const web = (text) => {
    try {
      const u = new URL(text);
      return (u.protocol === 'https:' || u.protocol === 'http:') && text.length <= 2048;
    } catch {
      return false;
    }
  };
  const images = f.get('image_urls').split(/[\s|]+/).filter(Boolean);
  if (images.length > MAX_IMAGES) return { error: `Image URLs: at most ${MAX_IMAGES}` };
  const badImage = images.find((u) => !web(u));
  if (badImage) return { error: `Image URLs: "${badImage}" is not a full http:// or https:// address` };
  const link = f.get('link').trim();
  if (!web(link)) return { error: 'Link: a full http:// or https:// address, like https://shop.example/item' };
  const moq = f.get('moq').trim();
  if (!/^\d+$/.test(moq) || Number(moq) < 1 || Number(moq) > 1000000) return { error: 'Minimum order: a whole number from 1 to 1000000' };
  const prices = [];
  for (const t of room.tiers) {
    const cents = priceCents(f.get(`price_${t}`));
    if (cents === null) return { error: `Price ${t}: write it like 12.50 (digits, at most two decimals)` };
    prices.push({ tier: t, price_cents: cents });
  }
  return {
    request: {
      room_id: room.id, brand_id: f.get('brand'), name, description: f.get('description'), image_urls: images, link,
      min_order_quantity: Number(moq), prices,
    },
  };
}

// The product form: a new product (`product` null; the brand on air is chosen) or an edit of
// one. Problems found in the page and the server's refusals are shown under the form.
function productForm(ctx, product) {
  const { room } = ctx;
  const form = $('#product-form');
  const price = (tier) => product?.prices.find((t) => t.tier === tier)?.price_cents;
  const input = (label, attrs) => h('label', {}, label, h('input', { autocomplete: 'off', ...attrs }));
  const error = h('p', { class: 'error wide', role: 'alert' });
  const brandId = product ? product.brand_id : room.brand_on_air || room.brands[0]?.id;
  replaceChildren(form,
    h('h3', { class: 'wide' }, product ? `Edit ${product.name}` : 'New product'),
    h('label', {}, 'Brand', h('select', { name: 'brand' }, room.brands.map((b) => h('option', { value: b.id, selected: b.id === brandId }, b.name)))),
    input('Name', { name: 'name', value: product?.name ?? '', maxlength: '200' }),
    h('label', { class: 'wide' }, 'Description', h('textarea', { name: 'description', maxlength: '5000', rows: '3' }, product?.description ?? '')),
    input('Image URLs (space-separated)', { name: 'image_urls', value: product?.image_urls.join(' ') ?? '' }),
    input('Link', { name: 'link', value: product?.link ?? '', placeholder: 'https://' }),
    input('Minimum order', { name: 'moq', inputmode: 'numeric', value: String(product?.min_order_quantity ?? 1) }),
    room.tiers.map((t) => input(`Price ${t} (${room.currency})`, {
      name: `price_${t}`, value: price(t) === undefined ? '' : decimal(price(t)), inputmode: 'decimal', placeholder: '12.50',
    })),
    h('button', { type: 'submit' }, product ? 'Save product' : 'Add product'),
    h('button', { type: 'button', onclick: () => { form.hidden = true; } }, 'Cancel'),
    error);
  form.dataset.product = product?.id ?? '';
  form.hidden = false;
  form.onsubmit = async (e) => {
    e.preventDefault();
    error.textContent = '';
    const checked = productRequest(room, new FormData(form));
    if (checked.error) {
      error.textContent = checked.error;
      return;
    }
    try {
      const saved = await ctx.client.call('UpsertProduct', { ...checked.request, product_id: product?.id ?? '' });
      toast(`${saved.name} ${product ? 'saved' : 'added'}`);
      form.hidden = true;
      await ctx.refreshProducts();
    } catch (err) {
      error.textContent = `UpsertProduct: ${err.codeName || 'error'} — ${err.message}`;
    }
  };
  form.querySelector(product ? 'input[name=name]' : 'select[name=brand]').focus();
}

// ---- Dealers ----------------------------------------------------------------------------------

export function setupDealers(ctx) {
  importPanel(ctx, {
    method: 'ImportDealers',
    prefix: 'dealers',
    summary: (r) => {
      const again = r.dealers.filter((d) => d.existing).length;
      return `${r.dealers.length} dealer(s), ${r.dealers.length - again} new and ${again} registered before`;
    },
    imported: async (r) => {
      replaceChildren($('#dealers-imported'), r.dealers.map((d) => linkItem(
        `${d.registration.name} (${d.registration.company}) · ${d.tier}`, d.registration.personal_link, { viewer: d.registration.viewer_id })));
    },
  });
  replaceChildren($('#dealers-imported'));
}

// ---- Links ------------------------------------------------------------------------------------

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Link copied');
  } catch {
    toast(`Copy this link: ${text}`, 'error');
  }
}

// A labelled absolute link on this origin with a copy button.
function linkItem(label, path, dataset = {}) {
  const url = new URL(path, location.origin).href;
  return h('li', { dataset },
    h('span', {}, label), ' ', h('code', { class: 'link' }, url),
    h('button', { type: 'button', class: 'copy', onclick: () => copy(url) }, 'Copy'));
}

export function setupLinks(ctx) {
  const { room } = ctx;
  const viewer = new URL(`/r/${room.id}`, location.origin).href;
  $('#viewer-link').textContent = viewer;
  $('#viewer-link').nextElementSibling.onclick = () => copy(viewer);
  const form = $('#channel-form');
  form.onsubmit = async (e) => {
    e.preventDefault();
    const name = new FormData(form).get('name').trim();
    const channel = await rpc(ctx, 'CreateChannel', { room_id: room.id, name }, (c) => `Channel link for ${c.name} created`);
    if (channel) {
      form.reset();
      await refreshChannels(ctx);
    }
  };
  return refreshChannels(ctx);
}

async function refreshChannels(ctx) {
  const r = await rpc(ctx, 'ListChannels', { room_id: ctx.room.id });
  if (!r) return;
  replaceChildren($('#channels'), r.channels.length
    ? r.channels.map((c) => linkItem(c.name, c.link, { channel: c.code }))
    : h('li', { class: 'empty' }, 'No channel links yet.'));
}
