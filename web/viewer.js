// Viewer page logic: the room's WebSocket with resume (moving to another node of a cluster), WHEP playback, running order, chat, likes and online count.
import { $, h, replaceChildren, ServerClock, negotiate, endMediaSession, toast, duration } from './common.js';
import { commerceHandlers, renderCommerce, tickCountdowns } from './viewer-commerce.js';
import {
  offerRegistration, linkParams, openWithPass, tokenFromPass, showInviteLink, wireInviteCopy,
} from './viewer-register.js';

const roomId = decodeURIComponent(location.pathname.split('/')[2] || '');
const tokenStorageKey = `showfloor.token.${roomId}`;
// Close codes after which reconnecting cannot help (docs/protocol.md).
const FINAL_CLOSES = new Set([4001, 4003, 4004, 4010, 4029]);
// Closes after which another node may serve the page better: this one is going away, full, lost
// track of the room, or could not be reached at all (1006). Any other close retries the same node.
const MOVE_CLOSES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);
// A connection that has not brought its welcome by then is given up (a node that hangs).
const WELCOME_WITHIN_MS = 10000;
// Room events take a seq of their own and are replayed on resume; private messages are not.
const PRIVATE = new Set(['welcome', 'role_changed', 'muted', 'unmuted', 'kicked', 'dealer_application_received',
  'application_result', 'pong', 'order_placed', 'order_status', 'grab_result', 'draw_entered', 'draw_won',
  'red_packet_result', 'error']);
const MAX_CHAT = 200;

const clock = new ServerClock();
const state = {
  room: null, you: null, brandOnAir: null, runningOrder: [], shelf: [], pinned: null, program: null,
  online: 0, likes: 0, chat: [], sales: new Map(), draws: new Map(), packets: new Map(), orders: new Map(),
  application: null, epoch: null, lastSeq: 0,
};
let socket = null;
let token = null;

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    toast('Not connected — try again in a moment', 'error');
    return false;
  }
  socket.send(JSON.stringify(message));
  return true;
}

const ctx = { state, clock, send, render: () => renderAll() };

// ---- Connection: connect, resume on reconnect, back off, move between nodes ----------------

function setConnection(kind, text) {
  const el = $('#conn');
  el.dataset.state = kind;
  el.textContent = text;
}

// The nodes (`HOST:PORT`) this page may use, in the order it tries them: the cluster's nodes as
// the server lists them in <meta name="showfloor-nodes"> (its CSP allows exactly those), or the
// ones of them the link names in `nodes=HOST:PORT,HOST:PORT`, starting from the page's own host.
// On a single node the list is just the page's own host.
function nodeList() {
  const split = (text) => (text || '').split(',').map((n) => n.trim()).filter(Boolean);
  const served = split($('meta[name=showfloor-nodes]')?.content);
  const wanted = split(new URL(location.href).searchParams.get('nodes'));
  const allowed = new Set([location.host, ...served]);
  const list = [...new Set(wanted.length ? wanted : served)].filter((n) => allowed.has(n));
  const here = list.indexOf(location.host);
  return here < 0 ? [location.host, ...list] : [...list.slice(here), ...list.slice(0, here)];
}
const nodes = nodeList();
let node = 0;

let attempt = 0;
let welcomeTimer = null;
function connect() {
  const params = new URLSearchParams({ token });
  if (state.epoch) {
    params.set('last_seq', String(state.lastSeq));
    params.set('epoch', state.epoch);
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${nodes[node]}/ws/${encodeURIComponent(roomId)}?${params}`);
  } catch {
    socket = null;
    reconnect(1006);
    return;
  }
  socket = ws;
  clearTimeout(welcomeTimer);
  welcomeTimer = setTimeout(() => {
    if (socket !== ws) return;
    socket = null;
    ws.close();
    reconnect(1006);
  }, WELCOME_WITHIN_MS);
  ws.onmessage = (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return; }
    if (message.type === 'welcome') clearTimeout(welcomeTimer);
    dispatch(message);
  };
  ws.onclose = (e) => {
    if (socket !== ws) return;
    socket = null;
    clearTimeout(welcomeTimer);
    if (FINAL_CLOSES.has(e.code)) {
      stopPlayback();
      setConnection('closed', e.reason || `closed (${e.code})`);
      // A refused or expired token: a registrant's pass fetches a fresh one; else ask.
      if (e.code === 4001) {
        sessionStorage.removeItem(tokenStorageKey);
        tokenFromPass(roomId).then((fresh) => (fresh ? useToken(fresh) : showJoin(e.reason)),
          () => showJoin(e.reason));
      }
      return;
    }
    reconnect(e.code);
  };
}

function reconnect(code) {
  if (MOVE_CLOSES.has(code)) node = (node + 1) % nodes.length;
  // Exponential backoff with jitter, so a room's viewers do not all come back at once. It
  // doubles once per round of the nodes: a dead node costs the next one a short wait only.
  const round = Math.floor(attempt / nodes.length);
  const delay = Math.min(15000, 500 * 2 ** round) * (0.5 + Math.random() / 2);
  attempt += 1;
  setConnection('reconnecting', nodes.length > 1 ? `reconnecting to ${nodes[node]}… (try ${attempt})` : 'reconnecting…');
  setTimeout(connect, delay);
}

// Pings keep the server clock estimate fresh for countdowns (the server pings for liveness).
setInterval(() => {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'ping', t: Date.now() }));
}, 20000);

function dispatch(m) {
  if (!PRIVATE.has(m.type)) {
    // A resume may replay what we already applied: deduplicate by seq.
    if (m.seq <= state.lastSeq) return;
    state.lastSeq = m.seq;
  }
  const handler = handlers[m.type] || commerceHandlers[m.type];
  if (handler) handler(m, ctx);
  renderAll();
}

const handlers = {
  welcome(m) {
    attempt = 0;
    clock.sync(m.server_time_ms);
    state.you = m.you;
    setConnection('live', m.resumed ? `live (resumed, ${m.replayed} missed)` : 'live');
    $('#conn').title = `connected to ${nodes[node]}`;
    // Video follows the page to the node it moved to.
    if (pc && mediaNode !== nodes[node]) {
      stopPlayback();
      startPlayback();
    }
    if (m.resumed) return;
    // A full snapshot replaces everything (first join, or a resume the room could not serve).
    state.epoch = m.epoch;
    state.lastSeq = m.seq;
    state.room = m.room;
    state.brandOnAir = m.brand_on_air;
    state.program = m.program;
    state.runningOrder = m.running_order;
    state.shelf = m.shelf;
    state.pinned = m.pinned_product;
    state.online = m.online;
    state.likes = m.likes;
    state.chat = m.recent_chat;
    state.sales = new Map(m.sales.map((s) => [s.sale_id, s]));
    state.draws = new Map(m.draws.map((d) => [d.draw_id, d]));
    state.packets = new Map(m.red_packets.map((p) => [p.packet_id, p]));
    $('#join').hidden = true;
    $('#register').hidden = true;
    $('#live').hidden = false;
    showInviteLink(roomId);
    startPlayback();
  },
  pong(m) { clock.sync(m.server_time_ms); },
  role_changed(m) {
    state.you = m.you;
    state.shelf = m.shelf;
    state.pinned = m.pinned_product;
    toast(m.you.role === 'dealer' ? `You are now a verified dealer (${m.you.tier})` : 'Dealer status withdrawn');
    // `role_changed` carries the shelf only; running flash sales, draws and red packets look
    // different to the new class. A resume "from the future" is answered by a full welcome
    // for the connection's current class (docs/protocol.md, Resume).
    send({ type: 'resume', last_seq: Number.MAX_SAFE_INTEGER, epoch: state.epoch });
  },
  muted(m) { state.you = { ...state.you, muted_until_ms: m.until_ms }; },
  unmuted() { state.you = { ...state.you, muted_until_ms: null }; },
  kicked(m) { setConnection('closed', m.reason); },
  error(m) {
    if (m.code === 'rate_limited' || m.code === 'muted') $('#chat-feedback').textContent = m.message;
    else toast(m.message, 'error');
  },
  chat(m) {
    state.chat.push(m);
    if (state.chat.length > MAX_CHAT) state.chat.splice(0, state.chat.length - MAX_CHAT);
  },
  chat_deleted(m) { state.chat = state.chat.filter((c) => c.id !== m.id); },
  announce(m) {
    const el = $('#announce');
    el.textContent = m.text;
    el.hidden = false;
    clearTimeout(handlers.announce.timer);
    handlers.announce.timer = setTimeout(() => { el.hidden = true; }, 15000);
  },
  online_count(m) { state.online = m.online; },
  like_count(m) { state.likes = m.likes; },
  brand_switched(m) {
    state.brandOnAir = m.brand;
    state.shelf = m.shelf;
    state.pinned = m.pinned_product;
  },
  running_order(m) { state.runningOrder = m.brands; },
  program(m) { state.program = { brand_id: m.brand_id, live: m.live }; },
  room_state(m) { state.room = { ...state.room, state: m.state }; },
};

// ---- Rendering ------------------------------------------------------------------------------

function renderAll() {
  if (!state.room) return;
  $('#title').textContent = state.room.title;
  document.title = `${state.room.title} — live`;
  const badge = $('#room-state');
  badge.textContent = state.room.state;
  badge.dataset.state = state.room.state;
  $('#online').textContent = `${state.online} online`;
  $('#likes').textContent = String(state.likes);
  $('#on-air').textContent = state.brandOnAir ? `On air: ${state.brandOnAir.name}` : 'Starting soon';
  const programEl = $('#program-state');
  programEl.hidden = !state.program || state.program.live;
  programEl.textContent = state.brandOnAir ? `${state.brandOnAir.name} is getting ready…` : 'The show starts soon';
  replaceChildren($('#running-order'), state.runningOrder.map((b) => h('li', {
    class: state.brandOnAir && b.id === state.brandOnAir.id ? 'on' : '',
    'aria-current': state.brandOnAir && b.id === state.brandOnAir.id ? 'true' : null,
  }, b.logo_url ? h('img', { src: b.logo_url, alt: '' }) : null, b.name)));
  renderChat();
  renderCommerce(ctx);
}

function renderChat() {
  const list = $('#chat');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  replaceChildren(list, state.chat.map((c) => h('li', { dataset: { id: c.id } },
    h('span', { class: c.is_dealer ? 'who dealer' : 'who' }, c.display_name), ' ', h('span', { class: 'text' }, c.text))));
  if (nearBottom) list.scrollTop = list.scrollHeight;
  const muted = state.you?.muted_until_ms && state.you.muted_until_ms > clock.now();
  $('#chat-input').disabled = !!muted;
  if (muted) $('#chat-feedback').textContent = `You are muted for ${duration(state.you.muted_until_ms - clock.now())}`;
}

// ---- Media: one WHEP PeerConnection per node the page uses -----------------------------------

let pc = null;
let mediaResource = null;
// The node of the WHEP session: where it was POSTed, then where its resource is (a node that
// does not run the room redirects the POST to the one that does).
let mediaNode = null;
function startPlayback() {
  if (pc) return;
  pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    $('#video').srcObject = stream;
  };
  const current = pc;
  pc.onconnectionstatechange = () => {
    if (current.connectionState === 'failed') retryPlayback(current, 'the video connection failed');
  };
  mediaNode = nodes[node];
  negotiate(pc, `${location.protocol}//${mediaNode}/whep/${encodeURIComponent(roomId)}`, token)
    .then((resource) => {
      if (pc !== current) return endMediaSession(resource, token);
      mediaResource = resource;
      mediaNode = new URL(resource).host;
    })
    .catch((e) => retryPlayback(current, `video unavailable (${e.message})`, e.retryAfterMs));
}

// Tries again after the server's Retry-After if it gave one (an overloaded node), else 3 s;
// spread over up to half as much again, so a room's viewers do not all come back at once.
function retryPlayback(failed, why, afterMs) {
  if (pc !== failed) return;
  toast(`${why}; retrying`, 'error');
  failed.close();
  pc = null;
  mediaResource = null;
  mediaNode = null;
  const base = afterMs || 3000;
  setTimeout(() => { if (socket) startPlayback(); }, base * (1 + Math.random() / 2));
}

function stopPlayback() {
  endMediaSession(mediaResource, token);
  pc?.close();
  pc = null;
  mediaResource = null;
  mediaNode = null;
}

// For tests and debugging in the browser console: the playback PeerConnection, the socket, the
// node list, the nodes of the socket and of the video, the last room event applied.
window.showfloor = {
  peerConnection: () => pc, socket: () => socket, nodes, node: () => nodes[node], mediaNode: () => mediaNode,
  lastSeq: () => state.lastSeq,
};

// ---- Inputs ---------------------------------------------------------------------------------

function wireInputs() {
  const video = $('#video');
  const unmute = $('#unmute');
  unmute.addEventListener('click', () => {
    video.muted = false;
    video.play().catch(() => {});
    unmute.hidden = true;
  });
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#chat-input');
    const text = input.value.trim();
    if (!text) return;
    if (send({ type: 'chat', text })) {
      input.value = '';
      $('#chat-feedback').textContent = '';
    }
  });
  // Taps are batched: one `like` message carries every tap of the last half second.
  let pendingLikes = 0;
  $('#like').addEventListener('click', () => {
    pendingLikes += 1;
    state.likes += 1;
    $('#likes').textContent = String(state.likes);
    if (pendingLikes === 1) {
      setTimeout(() => {
        send({ type: 'like', count: Math.min(pendingLikes, 100) });
        pendingLikes = 0;
      }, 500);
    }
  });
  $('#join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = new FormData(e.target).get('token').trim();
    sessionStorage.setItem(tokenStorageKey, token);
    $('#join-error').textContent = '';
    state.epoch = null;
    connect();
  });
  window.addEventListener('pagehide', () => endMediaSession(mediaResource, token));
  setInterval(() => tickCountdowns(ctx), 500);
}

function showJoin(reason) {
  $('#live').hidden = true;
  $('#join').hidden = false;
  $('#join-error').textContent = reason || '';
  setConnection('closed', 'not joined');
}

function useToken(fresh) {
  token = fresh;
  sessionStorage.setItem(tokenStorageKey, fresh);
  state.epoch = null;
  connect();
}

async function start() {
  wireInputs();
  wireInviteCopy();
  // The token arrives in the shared link; take it out of the address bar (and history) at once.
  const url = new URL(location.href);
  const fromLink = url.searchParams.get('token');
  if (fromLink) {
    sessionStorage.setItem(tokenStorageKey, fromLink);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  const link = linkParams();
  token = sessionStorage.getItem(tokenStorageKey);
  if (!roomId) return showJoin('This link has no room in it.');
  if (token) return connect();
  // No token: a personal link, a pass kept from an earlier visit, or the registration form.
  setConnection('closed', 'not joined');
  if (link.pass) return openWithPass(roomId, link.pass, useToken, showJoin);
  const kept = await tokenFromPass(roomId).catch(() => null);
  if (kept) return useToken(kept);
  const offered = await offerRegistration(roomId, link, useToken);
  if (offered === true) return;
  showJoin(offered || '');
}

start();
