// Headless Chromium against a running showfloor: two pages publish their fake camera and
// microphone by WHIP (brands A and B), a third plays the room's program by WHEP. The
// viewer's framesDecoded must grow, and keep growing across brand switches A → B → A, on the
// same RTCPeerConnection. Environment: see run.sh.
import { launchChromium, env } from './harness.mjs';
import { execFileSync } from 'node:child_process';

const HTTP = env('HTTP');
const ROOM = env('ROOM');
const [A, B] = [env('BRAND_A'), env('BRAND_B')];
const [TA, TB, TV] = [env('TOKEN_A'), env('TOKEN_B'), env('TOKEN_V')];
const BIN = env('SHOWFLOOR_BIN');
const WAIT_MS = 20000;

const switchTo = (brand) =>
  execFileSync(BIN, ['ctl', 'switch-brand', ROOM, brand], { stdio: ['ignore', 'ignore', 'inherit'] });

const browser = await launchChromium();

// Pages live on the server's origin (a secure context on localhost; same origin for fetch).
async function page() {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.route('**/browser-test', (r) =>
    r.fulfill({ contentType: 'text/html', body: '<!doctype html><video autoplay muted playsinline></video>' }));
  p.on('console', (m) => console.log(`[page] ${m.text()}`));
  await p.goto(`${HTTP}/browser-test`);
  return p;
}

// Shared by the pages: non-trickle offer/answer over fetch.
const negotiate = `async (pc, url, token) => {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && ok());
    setTimeout(ok, 3000);
  });
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token },
    body: pc.localDescription.sdp,
  });
  const body = await r.text();
  if (r.status !== 201) throw new Error(url + ': ' + r.status + ' ' + body);
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return r.headers.get('Location');
}`;

async function publish(brand, token) {
  const p = await page();
  const location = await p.evaluate(async ([url, token, negotiate]) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly' });
    window.pc = pc;
    return await eval(negotiate)(pc, url, token);
  }, [`${HTTP}/whip/${ROOM}/${brand}`, token, negotiate]);
  console.log(`publisher ${brand}: ${location}`);
  return p;
}

async function view() {
  const p = await page();
  await p.evaluate(async ([url, token, negotiate]) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const ms = new MediaStream();
    pc.ontrack = (e) => {
      ms.addTrack(e.track);
      document.querySelector('video').srcObject = ms;
    };
    window.states = [];
    pc.onconnectionstatechange = () => window.states.push(pc.connectionState);
    window.pc = pc;
    await eval(negotiate)(pc, url, token);
  }, [`${HTTP}/whep/${ROOM}`, TV, negotiate]);
  return p;
}

async function stats(p) {
  return p.evaluate(async () => {
    const s = { framesDecoded: 0, keyFramesDecoded: 0, freezeCount: 0, audioPackets: 0 };
    for (const r of (await window.pc.getStats()).values()) {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        s.framesDecoded = r.framesDecoded || 0;
        s.keyFramesDecoded = r.keyFramesDecoded || 0;
        s.freezeCount = r.freezeCount || 0;
        s.packetsLost = r.packetsLost || 0;
        s.codec = r.codecId;
      }
      if (r.type === 'inbound-rtp' && r.kind === 'audio') s.audioPackets = r.packetsReceived || 0;
    }
    s.state = window.pc.connectionState;
    s.states = window.states.join(',');
    return s;
  });
}

async function growsBy(p, label, n) {
  const start = await stats(p);
  const t0 = Date.now();
  for (;;) {
    const s = await stats(p);
    if (s.framesDecoded >= start.framesDecoded + n) {
      console.log(`${label}: framesDecoded ${start.framesDecoded} → ${s.framesDecoded} in ${Date.now() - t0} ms ` +
        `(key frames ${s.keyFramesDecoded}, freezes ${s.freezeCount}, lost ${s.packetsLost}, audio packets ${s.audioPackets}, state ${s.state})`);
      return s;
    }
    if (Date.now() - t0 > WAIT_MS) throw new Error(`${label}: framesDecoded stuck at ${s.framesDecoded} (${JSON.stringify(s)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let failed = false;
try {
  await publish(A, TA);
  await publish(B, TB);
  const viewer = await view();
  await growsBy(viewer, 'brand A on air', 30);
  for (const [i, brand] of [B, A, B, A].entries()) {
    switchTo(brand);
    await growsBy(viewer, `switch ${i + 1} to ${brand === A ? 'A' : 'B'}`, 30);
  }
  const s = await stats(viewer);
  if (s.states.split(',').some((x) => x === 'failed' || x === 'closed' || x === 'disconnected')) {
    throw new Error(`the viewer's connection broke: ${s.states}`);
  }
  console.log(`viewer connection states: ${s.states}`);
  console.log('1 passed, 0 failed');
} catch (e) {
  failed = true;
  console.error(e);
  console.log('0 passed, 1 failed');
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
