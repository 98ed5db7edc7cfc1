// Headless Chromium: the viewer page on node A of two (A does not run the room) is given `nodes=A,B`; A is killed; the page moves to B, resumes, and shows every chat once, in order. Environment: see tests/browser_failover.rs.
import { launchChromium, env, check, step, watchPage, runScenario } from './harness.mjs';

const NODE_A = env('NODE_A');
const NODE_B = env('NODE_B');
const PID_A = Number(env('PID_A'));
const ROOM = env('ROOM');
const WAIT_MS = 30000;
// The viewer's link, and that of a second viewer on B who chats.
const VIEWER_URL = `http://${NODE_A}/r/${ROOM}?token=${encodeURIComponent(env('TOKEN_VIEWER'))}&nodes=${NODE_A},${NODE_B}`;
const SENDER_URL = `http://${NODE_B}/r/${ROOM}?token=${encodeURIComponent(env('TOKEN_SENDER'))}`;

// Frames for this connection only, which carry the latest room event's seq (web/viewer.js).
const PRIVATE = new Set(['welcome', 'role_changed', 'muted', 'unmuted', 'kicked', 'dealer_application_received',
  'application_result', 'pong', 'order_placed', 'order_status', 'grab_result', 'draw_entered', 'draw_won',
  'red_packet_result', 'error']);

const browser = await launchChromium();
const newPage = async (label) => watchPage(await (await browser.newContext()).newPage(), label);

const waitText = (page, selector, text) => page.waitForFunction(([s, t]) =>
  [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), [selector, text], { timeout: WAIT_MS });

// What the page showed in its chat: [seq, text] per line (a message's id ends with its seq).
const shownChat = (page) => page.evaluate(() => [...document.querySelectorAll('#chat li')]
  .map((li) => [Number(li.dataset.id.split('.').pop()), li.querySelector('.text').textContent]));

await runScenario(browser, async () => {
  const sender = await newPage('sender on B');
  const viewer = await newPage('viewer');
  // Every frame of every WebSocket the viewer opens, and the status line's every change.
  const frames = [];
  viewer.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push({ url: ws.url(), ...JSON.parse(String(f.payload)) })));
  const sent = [];
  const chat = async (text) => {
    await sender.fill('#chat-input', text);
    await sender.click('#chat-form button');
    sent.push(text);
  };

  await step('the viewer page opens on A with nodes=A,B and goes live on A', async () => {
    await sender.goto(SENDER_URL);
    await sender.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
    await viewer.goto(VIEWER_URL);
    await viewer.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
    check(JSON.stringify(await viewer.evaluate(() => window.showfloor.nodes)) === JSON.stringify([NODE_A, NODE_B]),
      'the page uses the node list of its link');
    check(await viewer.evaluate(() => window.showfloor.node()) === NODE_A, 'the page is on A');
    // A does not run the room: it serves WHEP itself, with the feeds relayed from B.
    await viewer.waitForFunction((a) => window.showfloor.mediaNode() === a
      && window.showfloor.peerConnection()?.connectionState === 'connected', NODE_A, { timeout: WAIT_MS });
    await viewer.evaluate(() => {
      window.statusLog = [];
      const conn = document.querySelector('#conn');
      new MutationObserver(() => window.statusLog.push(`${conn.dataset.state}: ${conn.textContent}`))
        .observe(conn, { childList: true, characterData: true, subtree: true, attributes: true });
    });
  });

  await step('chat sent on B reaches the page on A', async () => {
    for (const n of [1, 2, 3]) await chat(`before the kill ${n}`);
    await waitText(viewer, '#chat .text', 'before the kill 3');
  });

  await step('A is killed (SIGKILL); chat goes on on B meanwhile', async () => {
    process.kill(PID_A, 'SIGKILL');
    for (const n of [1, 2, 3]) await chat(`while A is dead ${n}`);
  });

  await step('the page says it is reconnecting to B, then resumes there', async () => {
    await viewer.waitForFunction((b) => window.showfloor.node() === b
      && document.querySelector('#conn').dataset.state === 'live', NODE_B, { timeout: WAIT_MS });
    await waitText(viewer, '#conn', 'live (resumed');
    const log = await viewer.evaluate(() => window.statusLog);
    console.log(`  status changes: ${JSON.stringify(log)}`);
    check(log.some((s) => s.startsWith(`reconnecting: reconnecting to ${NODE_B}`)), 'the page said it was reconnecting to B');
    const welcomes = frames.filter((f) => f.type === 'welcome');
    check(welcomes.length === 2, `two welcomes, on A and on B (got ${welcomes.length})`);
    check(welcomes[0].url.includes(NODE_A) && welcomes[1].url.includes(NODE_B), 'the first on A, the second on B');
    check(welcomes[1].resumed === true && welcomes[1].epoch === welcomes[0].epoch, 'B resumed the session (same epoch)');
    check(welcomes[1].url.includes('last_seq=') && welcomes[1].url.includes(`epoch=${welcomes[0].epoch}`),
      'the page asked B to resume with last_seq and epoch');
    console.log(`  B replayed ${welcomes[1].replayed} events`);
  });

  await step('chat after the move arrives; every message is shown once, in order, and no room event is missing', async () => {
    for (const n of [1, 2, 3]) await chat(`after the move ${n}`);
    await waitText(viewer, '#chat .text', 'after the move 3');
    const shown = await shownChat(viewer);
    check(JSON.stringify(shown.map(([, text]) => text)) === JSON.stringify(sent),
      `the page shows exactly what was sent, in order:\n${JSON.stringify(shown)}`);
    const seqs = shown.map(([seq]) => seq);
    check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `chat seqs increase: ${seqs}`);
    // Room events are what the page may not miss: from the first welcome's seq on, every
    // seq up to the last one came on one of the two sockets.
    const first = frames.find((f) => f.type === 'welcome').seq;
    const events = frames.filter((f) => !PRIVATE.has(f.type)).map((f) => f.seq);
    const got = new Set(events);
    const last = Math.max(...got);
    const missing = [];
    for (let s = first + 1; s <= last; s += 1) if (!got.has(s)) missing.push(s);
    check(missing.length === 0, `room events ${first + 1}..${last} all received; missing ${missing}`);
    check(got.size === events.length, `no room event came twice: ${events}`);
    check(await viewer.evaluate(() => window.showfloor.lastSeq()) === last, 'the page applied up to the last event');
    check(await viewer.evaluate(() => document.querySelector('#conn').textContent.startsWith('live (resumed')),
      'the status shows the page live again');
  });

  await step('the video follows: the page sets WHEP up on B', async () => {
    await viewer.waitForFunction((b) => window.showfloor.mediaNode() === b
      && window.showfloor.peerConnection()?.connectionState === 'connected', NODE_B, { timeout: WAIT_MS });
  });
});
