// Headless Chromium registers on the viewer page at phone size: bad input answered at the field, then registration, the room, "my invite link", and a guest registering through it. Environment: see register.sh.
import { mkdirSync } from 'node:fs';
import { launchChromium, env, check, step, watchPage, runScenario } from './harness.mjs';

const HTTP = env('HTTP');
const ROOM = env('ROOM');
const CHANNEL = env('CHANNEL');
const ARTIFACTS = env('ARTIFACTS');
const WAIT_MS = 20000;
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

mkdirSync(ARTIFACTS, { recursive: true });
const browser = await launchChromium();

async function phonePage(label) {
  const context = await browser.newContext(PHONE);
  return watchPage(await context.newPage(), label);
}

async function register(page, name, phone) {
  await page.fill('#register-form input[name=name]', name);
  await page.fill('#register-form input[name=phone]', phone);
  await page.click('#register-form button');
}

await runScenario(browser, async () => {
  let first;
  let inviteLink;
  await step('a link without a token shows the registration form, phone first', async () => {
    first = await phonePage('first');
    await first.goto(`${HTTP}/r/${ROOM}?ch=${CHANNEL}`);
    await first.waitForSelector('#register:not([hidden])', { timeout: WAIT_MS });
    check(await first.locator('#join').isHidden(), 'the token form is not shown');
    const width = await first.evaluate(() => document.querySelector('#register').getBoundingClientRect().width);
    check(width <= 390, `the form fits a phone (${width}px)`);
    check((await first.getAttribute('#register-form input[name=phone]', 'type')) === 'tel', 'the phone field is a tel input');
  });
  await step('a bad phone is answered at its field, and nothing joins', async () => {
    await register(first, 'Ms Chen', '12345');
    await first.waitForFunction(() => document.querySelector('#register-error').textContent.includes('not a valid number'), null, { timeout: WAIT_MS });
    check((await first.getAttribute('#register-form input[name=phone]', 'aria-invalid')) === 'true', 'the phone field is marked');
    check(await first.locator('#live').isHidden(), 'the room is not shown');
  });
  await step('registering opens the room and shows my invite link', async () => {
    await register(first, 'Ms Chen', '138 0013 8000');
    await first.waitForSelector('#live:not([hidden])', { timeout: WAIT_MS });
    await first.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
    await first.waitForSelector('#my-invite:not([hidden])', { timeout: WAIT_MS });
    inviteLink = await first.inputValue('#my-invite-link');
    check(inviteLink.startsWith(`${HTTP}/r/${ROOM}?invite=`), `an invite link to share: ${inviteLink}`);
    check(!first.url().includes('pass='), 'no credential in the address bar');
    await first.screenshot({ path: `${ARTIFACTS}/register-phone-live.png` });
  });
  await step('a guest registers through the invite link', async () => {
    const guest = await phonePage('guest');
    await guest.goto(inviteLink);
    await guest.waitForSelector('#register:not([hidden])', { timeout: WAIT_MS });
    await guest.screenshot({ path: `${ARTIFACTS}/register-phone-form.png` });
    await register(guest, 'Mr Li', '139 0013 9000');
    await guest.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
  });
  await step('coming back without the link opens the room with the kept pass', async () => {
    const again = await first.context().newPage();
    watchPage(again, 'first-again');
    await again.goto(`${HTTP}/r/${ROOM}`);
    await again.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
  });
});
