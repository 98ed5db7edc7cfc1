// Shared by both pages: DOM building (text only, never HTML), money and time formatting, WHIP/WHEP signalling.

export const $ = (selector, root = document) => root.querySelector(selector);

// Builds an element. Children are nodes or strings; strings become text nodes, so nothing a
// viewer typed is ever parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replaceChildren(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// Integer cents of an ISO 4217 currency, e.g. money(25900, 'CNY') → "CN¥259.00".
export function money(cents, currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

// "m:ss" (or "h:mm:ss") for a duration in milliseconds; never negative.
export function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// Server time as the page best knows it: countdowns follow the server, not the device clock.
export class ServerClock {
  constructor() { this.offset = 0; }
  sync(serverTimeMs) { if (serverTimeMs) this.offset = serverTimeMs - Date.now(); }
  now() { return Date.now() + this.offset; }
}

// A fresh client key for an idempotent request (orders, grabs).
export function clientKey(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// Non-trickle WHIP/WHEP: gather every candidate, POST the offer, apply the answer. Returns the
// session's resource URL (for DELETE). A refusal throws with the server's one-line reason.
export async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    setTimeout(done, 3000);
  });
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const body = await r.text();
  if (r.status !== 201) {
    const e = new Error(`${r.status}: ${body.trim() || r.statusText}`);
    // A busy or full server (503) says when to come back.
    e.retryAfterMs = 1000 * Number(r.headers.get('retry-after')) || null;
    throw e;
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  // Relative to where the answer came from: a node that does not run the room redirects (307).
  return new URL(r.headers.get('location'), r.url || url).href;
}

export function endMediaSession(resource, token) {
  if (!resource) return;
  fetch(resource, { method: 'DELETE', headers: { authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {});
}

// A short-lived message in the page's toast area.
export function toast(text, kind = 'info') {
  const area = $('#toasts');
  if (!area) return;
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  area.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}
