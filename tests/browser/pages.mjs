// Headless Chromium drives the served pages: two host consoles publish fake cameras by WHIP and run the show over grpc-web, two viewer pages watch, chat, apply, grab. Environment: see pages.sh.
import { mkdirSync } from 'node:fs';
import { launchChromium, env, check, step, watchPage, runScenario } from './harness.mjs';

const HTTP = env('HTTP');
const ROOM = env('ROOM');
const [ALPHA, BRAVO] = [env('BRAND_A'), env('BRAND_B')];
const KEY = env('KEY');
const ARTIFACTS = env('ARTIFACTS');
const WAIT_MS = 20000;
const DESKTOP = { viewport: { width: 1366, height: 900 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
// The flash sale the host page creates, per tier, as typed into its form.
const SALE_PRICES = { gold: '4321.09', silver: '4432.10', bronze: '4543.21' };

// Every form a price could take in a frame, a response or the DOM: cents, and formatted.
const secretCents = [...env('SECRET_CENTS').split(','), ...Object.values(SALE_PRICES).map((p) => String(Math.round(Number(p) * 100)))];
const SECRETS = [
  ...secretCents,
  ...secretCents.map((c) => (Number(c) / 100).toFixed(2)),
  ...secretCents.map((c) => (Number(c) / 100).toLocaleString('en', { minimumFractionDigits: 2 })),
  ...env('SECRET_TEXT').split(','),
];
const PRICE_KEYS = ['"price_cents"', '"unit_price_cents"', '"link"'];

mkdirSync(ARTIFACTS, { recursive: true });
const browser = await launchChromium();

async function newPage(label, options) {
  const context = await browser.newContext(options);
  return watchPage(await context.newPage(), label);
}

const textOf = (page, selector) => page.locator(selector).innerText();
const waitText = (page, selector, text) => page.waitForFunction(([s, t]) =>
  [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), [selector, text], { timeout: WAIT_MS });

// ---- Host console ------------------------------------------------------------------------

async function openHost(label, options = DESKTOP) {
  const page = await newPage(label, options);
  await page.goto(`${HTTP}/host`);
  await page.fill('#sign-in-form input[name=key]', KEY);
  await page.click('#sign-in-form button');
  await page.waitForSelector('#console:not([hidden])', { timeout: WAIT_MS });
  if ((await page.inputValue('#room-select')) !== ROOM) await page.selectOption('#room-select', ROOM);
  // Live once the WatchRoom stream (grpc-web, server streaming) delivers its first stats.
  await page.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
  check(!page.url().includes(KEY), 'the API key is not in the URL');
  return page;
}

async function publish(host, brand) {
  await host.selectOption('#camera-brand', brand);
  await host.click('#camera-start');
  await host.waitForFunction(() => window.showfloor.peerConnection()?.connectionState === 'connected', null, { timeout: WAIT_MS });
}

async function hostToast(host, text) {
  await waitText(host, '#toasts .toast', text);
}

// ---- Viewer pages ------------------------------------------------------------------------

// Records every WebSocket frame and HTTP response body the page receives.
function record(page) {
  const seen = { frames: [], responses: [], pending: [] };
  page.on('websocket', (ws) => ws.on('framereceived', (f) => seen.frames.push(String(f.payload))));
  page.on('response', (r) => seen.pending.push(r.body()
    .then((b) => seen.responses.push({ url: r.url(), body: b.toString('utf8') }))
    .catch(() => seen.responses.push({ url: r.url(), body: '' }))));
  return seen;
}

async function openViewer(label, token, options) {
  const page = await newPage(label, options);
  const seen = record(page);
  await page.goto(`${HTTP}/r/${ROOM}?token=${encodeURIComponent(token)}`);
  await page.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
  check(!page.url().includes('token='), `${label}: the token left the address bar`);
  return { page, seen };
}

async function framesDecoded(page) {
  return page.evaluate(async () => {
    const pc = window.showfloor.peerConnection();
    if (!pc) return 0;
    let n = 0;
    for (const r of (await pc.getStats()).values()) if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0;
    return n;
  });
}

async function keepsDecoding(page, label, more = 30) {
  const start = await framesDecoded(page);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const now = await framesDecoded(page);
    if (now >= start + more) {
      console.log(`  ${label}: framesDecoded ${start} → ${now}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`${label}: framesDecoded stuck at ${now}`);
    await page.waitForTimeout(100);
  }
}

async function sendChat(page, text) {
  await page.fill('#chat-input', text);
  await page.click('#chat-form button');
}

async function screenshot(page, name, size) {
  await page.setViewportSize(size.viewport);
  await page.evaluate(() => {
    window.scrollTo(0, 0);
    for (const el of document.querySelectorAll('.table-wrap, .chat')) el.scrollLeft = 0;
  });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png` });
}

// ---- The scenario --------------------------------------------------------------------------

await runScenario(browser, async () => {
  let hostA;
  let hostB;
  let chen;
  let li;
  let orderId;

  await step('host consoles sign in over grpc-web, watch the room and publish a camera per brand by WHIP', async () => {
    hostA = await openHost('host-alpha');
    hostB = await openHost('host-bravo');
    await publish(hostA, ALPHA);
    await publish(hostB, BRAVO);
    check((await textOf(hostA, '#camera-state')).includes('Alpha'), 'camera state names the brand');
  });

  await step('viewer pages join from their links (token removed from the address bar) and decode the program by WHEP', async () => {
    chen = await openViewer('viewer-chen', env('TOKEN_CHEN'), PHONE);
    li = await openViewer('viewer-li', env('TOKEN_LI'), DESKTOP);
    await waitText(chen.page, '#on-air', 'Alpha');
    await waitText(chen.page, '#online', '2 online');
    await waitText(hostA, '#stats', '2 online');
    await keepsDecoding(chen.page, 'Alpha on air');
    await chen.page.evaluate(() => { window.firstPeerConnection = window.showfloor.peerConnection(); });
  });

  await step('without a token in the link the page asks for one; a bad token is refused with the reason', async () => {
    const page = await newPage('viewer-wang', PHONE);
    await page.goto(`${HTTP}/r/${ROOM}`);
    await page.waitForSelector('#join:not([hidden])', { timeout: WAIT_MS });
    await page.fill('#join-form input[name=token]', 'not-a-token');
    await page.click('#join-form button');
    await waitText(page, '#join-error', 'token');
    await page.fill('#join-form input[name=token]', env('TOKEN_WANG'));
    await page.click('#join-form button');
    await page.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
    check(await page.locator('#join').isHidden(), 'the join form is gone once live');
    await page.context().close();
  });

  await step('a brand switch started from the host page keeps the viewer decoding on the same connection', async () => {
    await hostA.click(`#brands li[data-brand="${BRAVO}"] button.switch`);
    await waitText(chen.page, '#on-air', 'Bravo');
    await waitText(chen.page, '#shelf h3', 'Trail boots');
    await keepsDecoding(chen.page, 'after the switch to Bravo');
    await hostA.click(`#brands li[data-brand="${ALPHA}"] button.switch`);
    await waitText(chen.page, '#on-air', 'Alpha');
    await keepsDecoding(chen.page, 'after the switch back to Alpha');
    const same = await chen.page.evaluate(() => window.firstPeerConnection === window.showfloor.peerConnection()
      && window.showfloor.peerConnection().connectionState === 'connected');
    check(same, 'one RTCPeerConnection, still connected, across both switches');
  });

  await step('chat round trip between two viewer pages (the host console sees it too)', async () => {
    await sendChat(chen.page, 'Is navy in stock?');
    await waitText(li.page, '#chat .text', 'Is navy in stock?');
    await sendChat(li.page, 'Sand is lovely too');
    await waitText(chen.page, '#chat .text', 'Sand is lovely too');
    await waitText(hostA, '#host-chat .text', 'Sand is lovely too');
    for (let i = 0; i < 3; i += 1) await chen.page.click('#like');
    await li.page.waitForFunction(() => Number(document.querySelector('#likes').textContent) >= 3, null, { timeout: WAIT_MS });
  });

  await step('the host pins a product and deletes a chat message; the chat rate limit is shown to the viewer', async () => {
    await hostA.click('#products li button');
    await waitText(chen.page, '#shelf .product.pinned', 'Pinned');
    await sendChat(li.page, 'Cheap watches, DM me');
    await waitText(hostA, '#host-chat .text', 'Cheap watches');
    await hostA.locator('#host-chat li', { hasText: 'Cheap watches' }).getByRole('button', { name: 'Delete' }).click();
    await chen.page.waitForFunction(() => ![...document.querySelectorAll('#chat .text')].some((e) => e.textContent.includes('Cheap watches')), null, { timeout: WAIT_MS });
    // The room allows 5 messages per 10 s: at most 6 in a row reach the limit.
    for (const city of ['Chengdu', 'Xi\'an', 'Kunming', 'Harbin', 'Lhasa', 'Urumqi']) {
      await sendChat(li.page, `Do you ship to ${city}?`);
      await li.page.waitForTimeout(150);
      if (await li.page.locator('#chat-feedback').innerText()) break;
    }
    await waitText(li.page, '#chat-feedback', 'at most 5 messages per 10 s');
  });

  await step('the host page starts a flash sale; bad input shows the gRPC status', async () => {
    await hostA.selectOption('#sale-form select[name=product]', { label: 'Down jacket (Alpha)' });
    await hostA.fill('#sale-form input[name=stock]', '5');
    for (const [tier, price] of Object.entries(SALE_PRICES)) await hostA.fill(`#sale-form input[name=price_${tier}]`, price);
    await hostA.click('#sale-form button[type=submit]');
    await hostToast(hostA, 'Flash sale');
    await waitText(chen.page, '[data-sale] h3', 'Down jacket');
    check((await textOf(chen.page, '[data-sale]')).includes('For verified dealers'), 'the public viewer sees the sale as dealers-only');
    // 5 cents cannot be split into 10 shares: the server's INVALID_ARGUMENT reaches the page.
    await hostA.click('#moments-panel details:nth-of-type(3) summary');
    await hostA.fill('#packet-form input[name=total]', '0.05');
    await hostA.fill('#packet-form input[name=count]', '10');
    await hostA.click('#packet-form button[type=submit]');
    await hostToast(hostA, 'DropRedPacket: INVALID_ARGUMENT');
  });

  await step('a public viewer finds no price or product link in the DOM, any WebSocket frame or any HTTP response', async () => {
    await waitText(chen.page, '#shelf', 'Price for verified dealers');
    check((await textOf(chen.page, '#shelf')).includes('Down jacket'), 'the shelf shows the product');
    const dom = await chen.page.evaluate(() => document.documentElement.outerHTML);
    for (const s of SECRETS) check(!dom.includes(s), `DOM contains ${s}`);
    await Promise.all(chen.seen.pending);
    check(chen.seen.frames.length > 5, `frames were recorded (${chen.seen.frames.length})`);
    check(chen.seen.responses.length >= 6, `responses were recorded (${chen.seen.responses.length})`);
    for (const f of chen.seen.frames) {
      for (const s of [...SECRETS, ...PRICE_KEYS]) check(!f.includes(s), `a WebSocket frame contains ${s}: ${f.slice(0, 200)}`);
    }
    for (const r of chen.seen.responses) for (const s of SECRETS) check(!r.body.includes(s), `${r.url} contains ${s}`);
    console.log(`  checked ${chen.seen.frames.length} frames, ${chen.seen.responses.length} responses, the DOM`);
  });

  await step('the host approves the viewer\'s dealer application: the price appears without a reload', async () => {
    await chen.page.evaluate(() => { window.notReloaded = true; });
    await chen.page.fill('.apply-form input[name=company]', 'Chen Trading Co.');
    await chen.page.fill('.apply-form input[name=licence_number]', '91310000MA1FL');
    await chen.page.fill('.apply-form input[name=contact]', '+86 138 0000 0000');
    await chen.page.click('.apply-form button[type=submit]');
    await waitText(chen.page, '#apply', 'waiting for review');
    await hostA.waitForSelector('#applications li[data-viewer=chen]', { timeout: WAIT_MS });
    await hostA.selectOption('#applications li[data-viewer=chen] select', 'gold');
    await hostA.click('#applications li[data-viewer=chen] button.approve');
    await waitText(chen.page, '#shelf .price', '7,319.43');
    check(await chen.page.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
    check((await chen.page.locator('#shelf a.link').getAttribute('href')) === 'https://shop.example/jacket-7319', 'the product link appears');
    await waitText(chen.page, '[data-sale] .price', '4,321.09');
  });

  await step('a flash sale grab from the page shows the win, and the order shows up in the host\'s table', async () => {
    await chen.page.click('[data-sale] button.grab');
    await waitText(chen.page, '[data-sale] .result.won', 'order');
    const result = await textOf(chen.page, '[data-sale] .result');
    orderId = /order (\S+)/.exec(result)?.[1];
    check(!!orderId, `the win names its order: ${result}`);
    const row = `#orders tr[data-order="${orderId}"]`;
    await hostA.waitForSelector(row, { timeout: WAIT_MS });
    const text = await textOf(hostA, row);
    check(text.includes('Ms Chen') && text.includes('Down jacket') && text.includes('4,321.09'), `the host's row: ${text}`);
  });

  await step('the dealer orders from the shelf; the host confirms it from the table', async () => {
    await chen.page.fill('#shelf .order-form input', '12');
    await chen.page.click('#shelf .order-form button');
    await waitText(chen.page, '#my-orders', 'Down jacket × 12');
    const placed = /^(\S+) ·/.exec(await textOf(chen.page, '#my-orders li'))?.[1];
    const row = `#orders tr[data-order="${placed}"]`;
    await hostA.waitForSelector(row, { timeout: WAIT_MS });
    await hostA.click(`${row} button`);
    await waitText(chen.page, '#my-orders', 'confirmed');
  });

  await step('a lucky draw from the host page: entry, result and the verify view on the viewer page', async () => {
    await hostA.click('#moments-panel details:nth-of-type(2) summary');
    await hostA.fill('#draw-form input[name=prize]', 'Factory tour');
    await hostA.click('#draw-form button[type=submit]');
    await li.page.click('[data-draw] button.enter');
    await waitText(li.page, '[data-draw]', "You're in");
    await hostA.click('#draws li button');
    await waitText(li.page, '[data-draw] .result', 'You won');
    await li.page.click('[data-draw] summary');
    await li.page.click('[data-draw] details button');
    await waitText(li.page, '[data-draw] .verify-outcome.ok', 'equals the commitment');
    const record = await textOf(li.page, '[data-draw] dl');
    check(/Entrants hash\s+[0-9a-f]{64}/.test(record) && /Seed\s+[0-9a-f]{64}/.test(record), `the verify view shows the record: ${record}`);
  });

  await step('a red packet from the host page is grabbed on the viewer page', async () => {
    await hostA.fill('#packet-form input[name=total]', '10.00');
    await hostA.fill('#packet-form input[name=count]', '2');
    await hostA.fill('#packet-form input[name=message]', 'Thanks for coming!');
    await hostA.click('#packet-form button[type=submit]');
    await li.page.click('[data-packet] button.grab-packet');
    await waitText(li.page, '[data-packet] .result', 'You got');
  });

  await step('a dropped WebSocket reconnects and resumes, showing its state', async () => {
    await li.page.evaluate(() => window.showfloor.socket().close());
    await li.page.waitForSelector('#conn[data-state=reconnecting]', { timeout: WAIT_MS });
    await sendChat(chen.page, 'Said while Li was away');
    await waitText(li.page, '#conn', 'live (resumed');
    await waitText(li.page, '#chat .text', 'Said while Li was away');
  });

  await step('the host mutes a viewer from the chat panel; the viewer page says so', async () => {
    await hostA.locator('#host-chat li[data-viewer=li]').first().getByRole('button', { name: 'Mute' }).click();
    await waitText(li.page, '#chat-feedback', 'You are muted');
    check(await li.page.locator('#chat-input').isDisabled(), 'the muted viewer cannot type');
    await waitText(hostA, '#actions', 'muted li');
  });

  await step('screenshots of both pages at phone and desktop sizes', async () => {
    await chen.page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await hostA.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await screenshot(chen.page, 'viewer-phone', PHONE);
    await screenshot(chen.page, 'viewer-desktop', DESKTOP);
    await screenshot(hostA, 'host-desktop', DESKTOP);
    await screenshot(hostA, 'host-phone', PHONE);
    console.log(`  saved to ${ARTIFACTS}`);
  });
});
