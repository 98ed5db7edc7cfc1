// Host console logic: sign-in with the API key, room choice and creation, the WatchRoom stream (orders, chat, applications, registrations waiting, stats), camera publishing by WHIP.
import { $, h, replaceChildren, ServerClock, negotiate, endMediaSession, toast } from './common.js';
import { ControlClient } from './grpc-web.js';
import {
  rpc, renderBrands, renderProducts, buildMomentForms, renderDraws, renderOrders, renderApplications, renderRegistrations, renderChat, recordStats,
  setupOrders,
} from './host-panels.js';
import {
  setupCreateRoom, setupBrandForm, setupCatalog, renderCatalog, setupDealers, setupLinks,
} from './host-setup.js';
import { setupReport, renderReport } from './host-report.js';

// The key lives in this tab's sessionStorage only: never in the URL, never in a cookie.
const KEY_STORAGE = 'showfloor.host.key';
const ROOM_STORAGE = 'showfloor.host.room';
const MAX_CHAT = 200;

let ctx = null;
let watch = null;

function setConnection(kind, text) {
  const el = $('#conn');
  el.dataset.state = kind;
  el.textContent = text;
}

function newContext(client, room) {
  const c = {
    client, room, clock: new ServerClock(), products: [], orders: new Map(), applications: new Map(), registrations: new Map(),
    chat: [], actions: [], stats: [], draws: [],
    setRoom(r) {
      c.room = r;
      const badge = $('#room-state');
      badge.textContent = ['', 'scheduled', 'live', 'ended'][r.state] || '';
      badge.dataset.state = badge.textContent;
      $('#room-open').hidden = badge.textContent !== 'scheduled';
      $('#room-close').hidden = badge.textContent !== 'live';
      renderBrands(c);
      renderCatalog(c);
      c.refreshSaleProducts?.();
    },
    async refreshProducts() {
      const r = await rpc(c, 'ListProducts', { room_id: c.room.id });
      if (!r) return;
      c.products = r.products;
      renderProducts(c);
      renderCatalog(c);
      c.refreshSaleProducts?.();
    },
    async refreshRoom() {
      const r = await rpc(c, 'GetRoom', { room_id: c.room.id });
      if (r) c.setRoom(r);
    },
    async refreshDraws() {
      const r = await rpc(c, 'ListDraws', { room_id: c.room.id });
      if (r) {
        c.draws = r.draws.filter((d) => !d.drawn_ms || d.drawn_ms > Date.now() - 10 * 60000);
        renderDraws(c);
      }
    },
  };
  return c;
}

// ---- Sign-in and room choice ----------------------------------------------------------------

async function signIn(key) {
  $('#sign-in-error').textContent = '';
  let client;
  let rooms;
  try {
    client = await ControlClient.connect(key);
    rooms = (await client.call('ListRooms', {})).rooms;
  } catch (e) {
    $('#sign-in').hidden = false;
    $('#sign-in-error').textContent = `${e.codeName || 'error'}: ${e.message}`;
    sessionStorage.removeItem(KEY_STORAGE);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('#sign-in').hidden = true;
  $('#sign-out').hidden = false;
  $('#new-room').hidden = false;
  $('#new-room').onclick = () => { $('#create-room').hidden = false; $('#create-room-form input[name=title]').focus(); };
  setupCreateRoom(client, async (room) => {
    sessionStorage.setItem(ROOM_STORAGE, room.id);
    await chooseRoom(client, (await client.call('ListRooms', {})).rooms);
  });
  await chooseRoom(client, rooms);
}

// Fills the room picker with the rooms that have not ended, newest first, and opens the one
// chosen last (or the newest). Without any, the new-room form shows.
async function chooseRoom(client, rooms) {
  const select = $('#room-select');
  const ended = client.enumValue('RoomState', 'ROOM_STATE_ENDED');
  const open = rooms.filter((r) => r.state !== ended).sort((a, b) => b.created_ms - a.created_ms);
  replaceChildren(select, open.map((r) => h('option', { value: r.id }, `${r.title} (${r.id})`)));
  select.closest('label').hidden = false;
  if (!open.length) {
    setConnection('closed', 'no open rooms');
    $('#create-room').hidden = false;
    return;
  }
  const remembered = sessionStorage.getItem(ROOM_STORAGE);
  if (open.some((r) => r.id === remembered)) select.value = remembered;
  select.onchange = () => openRoom(client, select.value);
  await openRoom(client, select.value);
}

async function openRoom(client, roomId) {
  sessionStorage.setItem(ROOM_STORAGE, roomId);
  watch?.abort();
  stopCamera();
  const probe = newContext(client, { id: roomId });
  const room = await rpc(probe, 'GetRoom', { room_id: roomId });
  if (!room) return;
  ctx = newContext(client, room);
  $('#console').hidden = false;
  buildMomentForms(ctx);
  setupBrandForm(ctx);
  setupCatalog(ctx);
  setupDealers(ctx);
  setupOrders(ctx);
  setupRoomState(ctx);
  setupReport(ctx);
  showView('console');
  ctx.setRoom(room);
  await Promise.all([loadLists(ctx), setupLinks(ctx)]);
  startWatch(ctx);
}

// What the stream does not replay: loaded on open and again after the stream reconnects.
async function loadLists(c) {
  const [products, applications, orders, registrations] = await Promise.all([
    rpc(c, 'ListProducts', { room_id: c.room.id }),
    rpc(c, 'ListDealerApplications', { room_id: c.room.id, status: c.client.enumValue('ApplicationStatus', 'APPLICATION_STATUS_PENDING') }),
    rpc(c, 'ListOrders', { room_id: c.room.id, limit: 100 }),
    rpc(c, 'ListRegistrations', { room_id: c.room.id, status: c.client.enumValue('RegistrationStatus', 'REGISTRATION_STATUS_PENDING') }),
  ]);
  if (products) c.products = products.products;
  if (applications) for (const a of applications.applications) c.applications.set(a.id, a);
  // Pending ones only: those decided meanwhile (here or by another host) drop out.
  if (registrations) c.registrations = new Map(registrations.registrations.map((r) => [r.id, r]));
  if (orders) for (const o of orders.orders) c.orders.set(o.id, o);
  renderProducts(c);
  renderCatalog(c);
  c.refreshSaleProducts();
  renderApplications(c);
  renderRegistrations(c);
  renderOrders(c);
  renderChat(c);
  await c.refreshDraws();
}

// The console or the Report view (loaded each time it is shown; Refresh reloads it).
function showView(view) {
  $('#console').hidden = view !== 'console';
  $('#report').hidden = view !== 'report';
  $('#show-report').hidden = false;
  $('#show-report').textContent = view === 'report' ? 'Console' : 'Report';
  $('#show-report').onclick = () => {
    const next = view === 'report' ? 'console' : 'report';
    showView(next);
    if (next === 'report' && ctx) renderReport(ctx);
  };
}

// Going live and ending the room; ending asks first, as nothing can be changed afterwards.
function setupRoomState(c) {
  $('#room-open').onclick = async () => {
    const room = await rpc(c, 'OpenRoom', { room_id: c.room.id }, 'The room is live');
    if (room) c.setRoom(room);
  };
  $('#room-close').onclick = async () => {
    if (!window.confirm(`End ${c.room.title}? Viewers are disconnected and the room can no longer be changed.`)) return;
    const room = await rpc(c, 'CloseRoom', { room_id: c.room.id }, 'The room has ended');
    if (room) c.setRoom(room);
  };
}

// ---- The WatchRoom stream ------------------------------------------------------------------

function startWatch(c) {
  const controller = new AbortController();
  watch = controller;
  let attempt = 0;
  const run = async () => {
    setConnection('connecting', 'connecting…');
    try {
      await c.client.stream('WatchRoom', { room_id: c.room.id }, (ev) => {
        attempt = 0;
        onWatchEvent(c, ev);
      }, controller.signal);
      setConnection('closed', 'the room stream ended');
      await c.refreshRoom();
      if (c.room.state === c.client.enumValue('RoomState', 'ROOM_STATE_ENDED')) return;
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e.code === 16) {
        toast(`WatchRoom: ${e.message}`, 'error');
        return signOut();
      }
      toast(`WatchRoom: ${e.codeName || 'error'} — ${e.message}`, 'error');
    }
    if (controller.signal.aborted) return;
    attempt += 1;
    setConnection('reconnecting', 'reconnecting…');
    setTimeout(async () => {
      if (controller.signal.aborted) return;
      await loadLists(c);
      run();
    }, Math.min(15000, 500 * 2 ** attempt));
  };
  run();
}

function onWatchEvent(c, ev) {
  if (ev.stats) {
    c.clock.sync(ev.stats.at_ms);
    setConnection('live', 'live');
    recordStats(c, ev.stats);
  } else if (ev.chat) {
    c.chat.push(ev.chat);
    if (c.chat.length > MAX_CHAT) c.chat.shift();
    renderChat(c);
  } else if (ev.application) {
    c.applications.set(ev.application.id, ev.application);
    renderApplications(c);
  } else if (ev.registration_pending) {
    const r = ev.registration_pending;
    c.registrations.set(r.id, r);
    renderRegistrations(c);
    toast(`${r.name || r.viewer_id}${r.company ? ` (${r.company})` : ''} registered and waits for approval`);
  } else if (ev.order) {
    c.orders.set(ev.order.id, ev.order);
    renderOrders(c);
  } else if (ev.action) {
    c.actions.push(ev.action);
    if (ev.action.action === 'chat_deleted') c.chat = c.chat.filter((m) => m.id !== ev.action.detail);
    renderChat(c);
    if (ev.action.action === 'brand_switched' || ev.action.action === 'room_state') c.refreshRoom();
  } else if (ev.lead_hot) {
    const l = ev.lead_hot;
    toast(`Hot lead: ${l.name || l.viewer_id}${l.company ? ` (${l.company})` : ''}, score ${l.score}${l.ordered ? '' : ' — no order yet'}`);
  }
}

// ---- Camera: WHIP for the chosen brand -------------------------------------------------------

let camera = null;
async function startCamera() {
  if (!ctx) return;
  const brandId = $('#camera-brand').value;
  const brand = ctx.room.brands.find((b) => b.id === brandId);
  if (!brand) return toast('Choose a brand first', 'error');
  const grant = await rpc(ctx, 'IssuePresenterToken', { room_id: ctx.room.id, brand_id: brandId });
  if (!grant) return;
  stopCamera();
  $('#camera-state').textContent = 'Starting the camera…';
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    camera = { pc, stream, token: grant.token, resource: null, brand };
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    $('#preview').srcObject = stream;
    pc.onconnectionstatechange = () => {
      if (camera?.pc !== pc) return;
      $('#camera-state').textContent = `Publishing ${brand.name}: ${pc.connectionState}`;
      if (pc.connectionState === 'failed') toast(`The camera connection for ${brand.name} failed`, 'error');
    };
    camera.resource = await negotiate(pc, `${location.origin}${grant.whip_path}`, grant.token);
    $('#camera-stop').disabled = false;
    $('#camera-state').textContent = `Publishing ${brand.name}: ${pc.connectionState}`;
  } catch (e) {
    stopCamera();
    $('#camera-state').textContent = `Camera not published: ${e.message}`;
    toast(`Camera: ${e.message}`, 'error');
  }
}

function stopCamera() {
  if (!camera) return;
  endMediaSession(camera.resource, camera.token);
  camera.pc.close();
  for (const t of camera.stream.getTracks()) t.stop();
  camera = null;
  $('#preview').srcObject = null;
  $('#camera-stop').disabled = true;
  $('#camera-state').textContent = 'Not publishing.';
}

// For tests and debugging in the browser console: the publishing PeerConnection.
window.showfloor = { peerConnection: () => camera?.pc || null };

function signOut() {
  watch?.abort();
  stopCamera();
  sessionStorage.removeItem(KEY_STORAGE);
  ctx = null;
  $('#console').hidden = true;
  $('#sign-out').hidden = true;
  $('#new-room').hidden = true;
  $('#create-room').hidden = true;
  $('#report').hidden = true;
  $('#show-report').hidden = true;
  $('#room-open').hidden = true;
  $('#room-close').hidden = true;
  $('#room-select').closest('label').hidden = true;
  $('#sign-in').hidden = false;
  setConnection('closed', 'signed out');
}

function start() {
  $('#sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn(new FormData(e.target).get('key').trim());
  });
  $('#camera-form').addEventListener('submit', (e) => {
    e.preventDefault();
    startCamera();
  });
  $('#camera-stop').addEventListener('click', stopCamera);
  $('#sign-out').addEventListener('click', signOut);
  window.addEventListener('pagehide', stopCamera);
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) signIn(key);
  else $('#sign-in').hidden = false;
}

start();
