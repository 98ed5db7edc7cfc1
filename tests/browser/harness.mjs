// Shared by the browser scenarios: their environment, Debian's Chromium launched headless with the flags WebRTC needs here (fake camera and microphone, loopback ICE), and the steps and checks of a scenario.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

// A variable the driving script must set.
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing ${name}`);
  return value;
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

let passed = 0;
export async function step(name, body) {
  const t0 = Date.now();
  await body();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
}

// A page's uncaught errors and CSP violations fail the scenario; its console errors are printed.
const problems = [];
export function watchPage(page, label) {
  page.on('pageerror', (e) => problems.push(`[${label}] uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`[${label}] ${m.text()}`);
    if (m.type() === 'error') console.log(`[${label}] ${m.text()}`);
  });
  return page;
}

// Runs the scenario's steps, then fails it on any page problem; closes the browser and exits 0 or 1.
export async function runScenario(browser, steps) {
  let failed = false;
  try {
    await steps();
    check(problems.length === 0, `page errors or CSP violations:\n${problems.join('\n')}`);
  } catch (e) {
    failed = true;
    console.error(e);
    if (problems.length) console.error(problems.join('\n'));
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, ${failed ? 1 : 0} failed`);
  process.exit(failed ? 1 : 0);
}
