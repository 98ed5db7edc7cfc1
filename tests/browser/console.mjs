// Headless Chromium drives the host console through an organiser's whole set-up, from an empty server: a new room, brands, a catalogue and a dealer list (each checked by a dry run first), a product added with the form, a channel link, going live, the imported dealers' orders confirmed in bulk and exported, a flash sale, a draw and a red packet, registrations approved and rejected as they arrive, and the Report view. What the server holds is read back with `ctl --json`. Environment: see console.sh.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { launchChromium, env, check, step, watchPage, runScenario } from './harness.mjs';

const HTTP = env('HTTP');
const KEY = env('KEY');
const BIN = env('BIN');
const ARTIFACTS = env('ARTIFACTS');
const WAIT_MS = 20000;
const DESKTOP = { viewport: { width: 1366, height: 900 } };

// The reply of `showfloor ctl --json ARGS…` (server and key from console.sh's environment).
const ctl = (...args) => JSON.parse(execFileSync(BIN, ['ctl', '--json', ...args], { encoding: 'utf8' }));

const HEADER = 'brand,name,description,image_urls,link,min_order_quantity,price_gold,price_silver';
// Line 3: a price with three decimals; line 4: a link that is not a URL; line 5: no name.
const BAD_CATALOG = [
  HEADER,
  'Alpha,Down jacket,"700-fill, navy",https://img.example/j.jpg,https://shop.example/jacket,10,259.00,279.00',
  'Bravo,Trail boots,,,https://shop.example/boots,6,12.345,13',
  'Bravo,Rain hat,,,shop.example/hat,1,5,6',
  'Cobalt,,,,https://shop.example/scarf,1,5,6',
].join('\n');
const GOOD_CATALOG = [
  HEADER,
  'Alpha,Down jacket,"700-fill, navy",https://img.example/j.jpg https://img.example/j2.jpg,https://shop.example/jacket,10,259.00,279.00',
  'Bravo,Trail boots,,,https://shop.example/boots,6,123.45,130',
  'Cobalt,Scarf,,,https://shop.example/scarf,1,5,6',
].join('\n');
const BAD_DEALERS = 'name,company,phone,tier\nMs Chen,Chen Trading,138 0013 8000,gold\nMr Li,Li Co,12345,silver\n';
const GOOD_DEALERS = 'name,company,phone,tier\nMs Chen,Chen Trading,138 0013 8000,gold\nMr Li,Li Co,139 0013 9000,silver\n';

mkdirSync(ARTIFACTS, { recursive: true });
const browser = await launchChromium();
const waitText = (page, selector, text) => page.waitForFunction(([s, t]) =>
  [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), [selector, text], { timeout: WAIT_MS });
const count = (page, selector, n) => page.waitForFunction(([s, k]) => document.querySelectorAll(s).length === k, [selector, n], { timeout: WAIT_MS });
const csv = (name, text) => ({ name, mimeType: 'text/csv', buffer: Buffer.from(text) });
// Fills the product form's fields by name and saves it: it must be refused with `error`
// shown under it, or (without `error`) close.
async function submitProduct(page, fields, error) {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#product-form [name=${name}]`, value);
  await page.click('#product-form button[type=submit]');
  if (error) await waitText(page, '#product-form .error', error);
  else await page.waitForSelector('#product-form', { state: 'hidden', timeout: WAIT_MS });
}

await runScenario(browser, async () => {
  const context = await browser.newContext({ ...DESKTOP, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: HTTP });
  const host = watchPage(await context.newPage(), 'host');
  let room;
  let brands;
  let links;

  await step('signing in to a server without rooms shows the new-room form; a bad tier is refused with the reason', async () => {
    await host.goto(`${HTTP}/host`);
    await host.fill('#sign-in-form input[name=key]', KEY);
    await host.click('#sign-in-form button');
    await host.waitForSelector('#create-room:not([hidden])', { timeout: WAIT_MS });
    await host.fill('#create-room-form input[name=title]', 'Winter order meeting');
    await host.fill('#create-room-form input[name=tiers]', 'gold, Silver!');
    await host.click('#create-room-form button[type=submit]');
    await waitText(host, '#create-room-error', 'INVALID_ARGUMENT');
    await waitText(host, '#create-room-error', 'silver!');
    check(ctl('list-rooms').rooms.length === 0, 'no room was created');
  });

  await step('the console creates and schedules a room with its tiers and registration mode, and opens it', async () => {
    await host.fill('#create-room-form input[name=tiers]', 'gold, silver');
    await host.fill('#create-room-form input[name=start]', '2026-12-24T10:00');
    await host.selectOption('#create-room-form select[name=registration]', 'REGISTRATION_MODE_OPEN');
    await host.fill('#create-room-form input[name=phone_country]', 'cn');
    await host.click('#create-room-form button[type=submit]');
    await host.waitForSelector('#console:not([hidden])', { timeout: WAIT_MS });
    await waitText(host, '#room-state', 'scheduled');
    room = await host.inputValue('#room-select');
    const r = ctl('get-room', room);
    const start = await host.evaluate(() => new Date('2026-12-24T10:00').getTime());
    check(r.title === 'Winter order meeting', `title ${r.title}`);
    check(JSON.stringify(r.tiers) === '["gold","silver"]', `tiers ${r.tiers}`);
    check(r.registration === 'REGISTRATION_MODE_OPEN' && r.phone_country === 'CN', `registration ${r.registration} ${r.phone_country}`);
    check(Number(r.scheduled_start_ms) === start, `start ${r.scheduled_start_ms} = ${start}`);
    check((await host.textContent('#catalog-columns')).endsWith('price_gold,price_silver'), 'the catalogue columns name the tiers');
  });

  await step('two brands are added in running order', async () => {
    for (const name of ['Alpha', 'Bravo']) {
      await host.fill('#brand-form input[name=name]', name);
      await host.click('#brand-form button');
      await waitText(host, '#brands li', name);
    }
    brands = ctl('get-room', room).brands;
    check(brands.map((b) => b.name).join() === 'Alpha,Bravo', `running order ${brands.map((b) => b.name)}`);
    check((await host.locator('#brands li').allTextContents()).map((t) => t.split('Put on air')[0]).join() === 'Alpha,Bravo', 'the list shows the order');
  });

  await step('a catalogue with bad rows: the dry run lists every bad row with line, column and reason; nothing is written', async () => {
    await host.setInputFiles('#catalog-file', csv('bad.csv', BAD_CATALOG));
    await host.click('#catalog-check');
    await count(host, '#catalog-errors li', 3);
    const rows = await host.$$eval('#catalog-errors li', (lis) => lis.map((li) => `${li.dataset.line}:${li.dataset.field}:${li.textContent}`));
    check(rows[0].startsWith('3:price_gold:Line 3 · price_gold — "12.345" is not a price'), rows[0]);
    check(rows[1].startsWith('4:link:Line 4 · link — link is not a valid URL'), rows[1]);
    check(rows[2].startsWith('5:name:Line 5 · name — name must be 1 to 200 characters'), rows[2]);
    await waitText(host, '#catalog-result', '3 bad row(s): nothing will be imported');
    check(await host.locator('#catalog-import').isDisabled(), 'import stays disabled');
    check(ctl('list-products', room).products.length === 0, 'no product was written');
    check(ctl('get-room', room).brands.length === 2, 'no brand was added');
  });

  await step('the fixed catalogue passes the dry run, then imports; the new brand joins the running order', async () => {
    await host.setInputFiles('#catalog-file', csv('good.csv', GOOD_CATALOG));
    check(await host.locator('#catalog-import').isDisabled(), 'a new file needs a check first');
    await host.click('#catalog-check');
    await waitText(host, '#catalog-result', 'Checked: 3 product(s), 3 new and 0 updated; new brand(s) Cobalt');
    check(ctl('list-products', room).products.length === 0, 'the dry run wrote nothing');
    await host.click('#catalog-import');
    await waitText(host, '#catalog-result', 'Imported: 3 product(s)');
    await count(host, '#catalog-products li[data-product]', 3);
    await count(host, '#brands li', 3);
    const products = ctl('list-products', room).products;
    const boots = products.find((p) => p.name === 'Trail boots');
    check(boots && boots.prices.map((t) => `${t.tier}=${t.price_cents}`).join() === 'gold=12345,silver=13000', `boots ${JSON.stringify(boots)}`);
    check(products.find((p) => p.name === 'Down jacket').image_urls.length === 2, 'two image URLs');
    brands = ctl('get-room', room).brands;
    check(brands.map((b) => b.name).join() === 'Alpha,Bravo,Cobalt', `running order ${brands.map((b) => b.name)}`);
  });

  await step('a product is edited in the console; a bad price is refused before sending', async () => {
    const item = host.locator('#catalog-products li', { hasText: 'Down jacket' });
    await item.locator('button.edit').click();
    await host.waitForSelector('#product-form:not([hidden])');
    await submitProduct(host, { price_gold: '3,00' }, 'Price gold: write it like 12.50');
    await submitProduct(host, { price_gold: '300.5', moq: '12' });
    await waitText(host, '#catalog-products li', 'moq 12');
    const jacket = ctl('list-products', room).products.find((p) => p.name === 'Down jacket');
    check(jacket.prices[0].price_cents === '30050' && jacket.min_order_quantity === 12, `jacket ${JSON.stringify(jacket.prices)} moq ${jacket.min_order_quantity}`);
  });

  await step('a product is added with the form: mistakes are named in the page, the server\'s refusal is shown, nothing is written until it is right', async () => {
    const products = () => ctl('list-products', room).products;
    await host.click('#product-new');
    await host.waitForSelector('#product-form:not([hidden])');
    check(await host.inputValue('#product-form input[name=name]') === '', 'a new product starts empty');
    const bravo = brands.find((b) => b.name === 'Bravo');
    await host.selectOption('#product-form select[name=brand]', bravo.id);
    await submitProduct(host, {}, 'Name: 1 to 200 characters');
    const hatFields = { name: 'Rain hat <b>', link: 'shop.example/hat', moq: '2', price_gold: '5', price_silver: '6.50' };
    await submitProduct(host, hatFields, 'Link: a full http:// or https:// address');
    await submitProduct(host, { link: 'https://shop.example/hat', moq: '0' }, 'Minimum order: a whole number from 1 to 1000000');
    // A tab in the description: the page lets it through, the server refuses it and says why.
    await submitProduct(host, { moq: '2', description: 'Waxed\tcotton' },
      'UpsertProduct: INVALID_ARGUMENT — description contains control characters');
    check(products().length === 3, 'no product was written while the form was refused');
    await submitProduct(host, { description: 'Waxed cotton' });
    await count(host, '#catalog-products li[data-product]', 4);
    // The name is shown as text, never read as HTML.
    await waitText(host, '#catalog-products li', 'Bravo · Rain hat <b>');
    check(await host.$$eval('#catalog-products b', (bs) => bs.length) === 0, 'no <b> element came from the name');
    const hat = products().find((p) => p.name === 'Rain hat <b>');
    check(hat && hat.brand_id === bravo.id && hat.min_order_quantity === 2 && hat.description === 'Waxed cotton'
      && hat.link === 'https://shop.example/hat' && hat.prices.map((t) => `${t.tier}=${t.price_cents}`).join() === 'gold=500,silver=650',
    `the hat as the server holds it: ${JSON.stringify(hat)}`);
  });

  await step('a dealer list: a bad row is reported by line; the fixed list imports with personal links', async () => {
    await host.setInputFiles('#dealers-file', csv('dealers.csv', BAD_DEALERS));
    await host.click('#dealers-check');
    await count(host, '#dealers-errors li', 1);
    check((await host.textContent('#dealers-errors li')).startsWith('Line 3 · phone'), await host.textContent('#dealers-errors li'));
    check(ctl('list-dealers', room).dealers.length === 0, 'no dealer was written');
    await host.setInputFiles('#dealers-file', csv('dealers.csv', GOOD_DEALERS));
    await host.click('#dealers-check');
    await waitText(host, '#dealers-result', 'Checked: 2 dealer(s)');
    await host.click('#dealers-import');
    await count(host, '#dealers-imported li', 2);
    links = await host.$$eval('#dealers-imported li code', (els) => els.map((e) => e.textContent));
    check(links.every((l) => l.startsWith(`${HTTP}/r/${room}?pass=`)), `personal links ${links}`);
    check(ctl('list-dealers', room).dealers.length === 2, 'two verified dealers');
  });

  await step('a channel link is created and copied, and so is the viewer link', async () => {
    await host.fill('#channel-form input[name=name]', 'WeChat group Shanghai');
    await host.click('#channel-form button');
    await host.waitForSelector('#channels li[data-channel]', { timeout: WAIT_MS });
    await host.click('#channels li[data-channel] button.copy');
    const copied = await host.evaluate(() => navigator.clipboard.readText());
    const code = ctl('channels', room).channels[0].code;
    check(copied === `${HTTP}/r/${room}?ch=${code}`, `copied ${copied}`);
    await host.click('#links-panel p.row button.copy');
    check(await host.evaluate(() => navigator.clipboard.readText()) === `${HTTP}/r/${room}`, 'the viewer link is copied');
  });

  await step('the room goes live from the console with Alpha on air', async () => {
    await host.click('#room-open');
    await waitText(host, '#room-state', 'live');
    await host.click(`#brands li[data-brand="${brands[0].id}"] button.switch`);
    await waitText(host, `#brands li[data-brand="${brands[0].id}"]`, 'On air');
    await host.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
  });

  const orders = [];
  await step('the two imported dealers open their personal links and order from the shelf', async () => {
    for (const [i, link] of links.entries()) {
      const dealer = watchPage(await (await browser.newContext(DESKTOP)).newPage(), `dealer-${i}`);
      await dealer.goto(link);
      await dealer.waitForSelector('#conn[data-state=live]', { timeout: WAIT_MS });
      await waitText(dealer, '#shelf', 'Down jacket');
      await dealer.fill('#shelf .order-form input', String(12 + i));
      await dealer.click('#shelf .order-form button');
      await waitText(dealer, '#my-orders', `Down jacket × ${12 + i}`);
      orders.push({ page: dealer, id: /^(\S+) ·/.exec(await dealer.textContent('#my-orders li'))[1] });
    }
    for (const o of orders) await host.waitForSelector(`#orders tr[data-order="${o.id}"][data-status=placed]`, { timeout: WAIT_MS });
  });

  await step('both orders are selected and confirmed in bulk; the dealers see it; one is then shipped', async () => {
    check(await host.locator('#bulk-confirm').isDisabled(), 'nothing selected, nothing to confirm');
    await host.check('#orders-all');
    await waitText(host, '#orders-selected', '2 selected');
    check(await host.locator('#bulk-ship').isDisabled(), 'placed orders cannot be shipped');
    await host.click('#bulk-confirm');
    for (const o of orders) await host.waitForSelector(`#orders tr[data-order="${o.id}"][data-status=confirmed]`, { timeout: WAIT_MS });
    for (const o of orders) await waitText(o.page, '#my-orders', 'confirmed');
    const statuses = ctl('list-orders', room).orders.map((o) => o.status);
    check(statuses.length === 2 && statuses.every((s) => s === 'ORDER_STATUS_CONFIRMED'), `statuses ${statuses}`);
    await host.check(`#orders tr[data-order="${orders[0].id}"] input.pick`);
    await host.click('#bulk-ship');
    await host.waitForSelector(`#orders tr[data-order="${orders[0].id}"][data-status=shipped]`, { timeout: WAIT_MS });
    await host.click(`#orders tr[data-order="${orders[1].id}"] button.to-cancelled`);
    await waitText(host, '#toasts .toast', 'Cancelling needs a reason');
    check(ctl('get-order', room, orders[1].id).status === 'ORDER_STATUS_CONFIRMED', 'not cancelled without a reason');
  });

  await step('the orders export as CSV from the console', async () => {
    // Exports come from the report's read of the store, which trails the room by a few seconds.
    for (let i = 0; i < 40 && !/shipped[\s\S]*confirmed|confirmed[\s\S]*shipped/.test(ctl('export', room, 'orders').csv); i += 1) {
      await host.waitForTimeout(250);
    }
    const [download] = await Promise.all([host.waitForEvent('download', { timeout: WAIT_MS }), host.click('#orders-export')]);
    const text = readFileSync(await download.path(), 'utf8');
    check(download.suggestedFilename().endsWith('.csv'), download.suggestedFilename());
    for (const o of orders) check(text.includes(o.id), `the CSV has order ${o.id}:\n${text}`);
    check(text.includes('shipped') && text.includes('confirmed'), `the CSV has the statuses:\n${text}`);
  });

  // The imported dealers' pages, in the order of the dealer file.
  const [chenPage, liPage] = orders.map((o) => o.page);
  const SALE = { gold: '199.00', silver: '209.00' };
  await step('a flash sale from the console: Mr Li grabs its one unit, Ms Chen tries too late', async () => {
    await host.selectOption('#sale-form select[name=product]', { label: 'Down jacket (Alpha)' });
    await host.fill('#sale-form input[name=stock]', '1');
    await host.fill('#sale-form input[name=limit]', '1');
    for (const [tier, price] of Object.entries(SALE)) await host.fill(`#sale-form input[name=price_${tier}]`, price);
    await host.click('#sale-form button[type=submit]');
    await waitText(host, '#toasts .toast', 'Flash sale');
    await liPage.waitForSelector('[data-sale] button.grab:not([disabled])', { timeout: WAIT_MS });
    await liPage.click('[data-sale] button.grab');
    await waitText(liPage, '[data-sale] .result.won', 'order');
    await waitText(chenPage, '[data-sale]', 'Sold out');
    check(await chenPage.locator('[data-sale] button.grab').isDisabled(), 'the sold-out sale cannot be grabbed');
    // A press that raced the stock update: the page still showed Grab when she pressed it.
    await chenPage.evaluate(() => {
      const grab = document.querySelector('[data-sale] button.grab');
      grab.disabled = false;
      grab.click();
    });
    await waitText(chenPage, '[data-sale] .result', 'Sold out — better luck next time');
  });

  await step('a lucky draw from the console: both dealers enter, the console closes it and it is drawn', async () => {
    await host.click('#moments-panel details:nth-of-type(2) summary');
    await host.fill('#draw-form input[name=prize]', 'Factory tour');
    await host.click('#draw-form button[type=submit]');
    for (const page of [chenPage, liPage]) {
      await page.click('[data-draw] button.enter');
      await waitText(page, '[data-draw]', "You're in");
    }
    await host.click('#draws li button');
    await waitText(host, '#draws li', 'drawn');
    for (const page of [chenPage, liPage]) await page.waitForSelector('[data-draw].state-drawn', { timeout: WAIT_MS });
  });

  await step('a red packet from the console is opened by one dealer', async () => {
    await host.click('#moments-panel details:nth-of-type(3) summary');
    await host.fill('#packet-form input[name=total]', '10.00');
    await host.fill('#packet-form input[name=count]', '3');
    await host.fill('#packet-form input[name=message]', 'Thanks for coming!');
    await host.click('#packet-form button[type=submit]');
    await chenPage.click('[data-packet] button.grab-packet');
    await waitText(chenPage, '[data-packet] .result', 'You got');
  });

  await step('with approval on, new registrations wait in the console; one is approved and gets its token, one is rejected', async () => {
    ctl('set-registration', room, 'approval');
    const register = async (name, phone) => {
      const r = await fetch(`${HTTP}/api/rooms/${room}/registrations`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, company: `${name.split(' ')[1]} & Sons <i>`, phone }),
      });
      check(r.status === 202, `${name} waits for approval: ${r.status}`);
      return r.json();
    };
    const zhao = await register('Mr Zhao', '136 0013 6000');
    const qian = await register('Ms Qian', '135 0013 5000');
    // WatchRoom tells the console within about 5 s; nothing is reloaded to show them.
    await host.waitForSelector(`#registrations li[data-registration="${zhao.registration_id}"]`, { timeout: WAIT_MS });
    await host.waitForSelector(`#registrations li[data-registration="${qian.registration_id}"]`, { timeout: WAIT_MS });
    const zhaoRow = `#registrations li[data-registration="${zhao.registration_id}"]`;
    check((await host.textContent(zhaoRow)).includes('Mr Zhao · Zhao & Sons <i>'), await host.textContent(zhaoRow));
    check(await host.$$eval('#registrations i', (is) => is.length) === 0, 'the company is shown as text');
    await waitText(host, '#registrations-count', '2');
    const poll = (r) => fetch(new URL(r.poll, HTTP));
    check((await poll(zhao)).status === 202, 'pending until the host decides');
    await host.click(`${zhaoRow} button.approve`);
    await host.waitForSelector(zhaoRow, { state: 'detached', timeout: WAIT_MS });
    await host.click(`#registrations li[data-registration="${qian.registration_id}"] button.reject`);
    await host.waitForSelector(`#registrations li[data-registration="${qian.registration_id}"]`, { state: 'detached', timeout: WAIT_MS });
    await waitText(host, '#registrations li.empty', 'No registrations waiting');
    const approved = await poll(zhao);
    check(approved.status === 200 && (await approved.json()).token, `the approved registrant gets a token: ${approved.status}`);
    check((await poll(qian)).status === 403, 'the rejected one is refused');
    const statuses = Object.fromEntries(ctl('registrations', room).registrations.map((r) => [r.name, r.status]));
    check(statuses['Mr Zhao'] === 'REGISTRATION_STATUS_APPROVED' && statuses['Ms Qian'] === 'REGISTRATION_STATUS_REJECTED', JSON.stringify(statuses));
    ctl('set-registration', room, 'open');
  });

  await step('a screenshot of the console after the set-up', async () => {
    await host.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await host.screenshot({ path: `${ARTIFACTS}/host-console-setup.png`, fullPage: true });
  });

  await step('the Report view draws the report, leads and invite ranking with the server\'s numbers', async () => {
    // A guest registers through the gold dealer's invite link: the invite ranking has a row.
    const chen = ctl('registrations', room).registrations.find((r) => r.name === 'Ms Chen');
    const r = await fetch(`${HTTP}/api/rooms/${room}/registrations`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Guest Wu', company: 'Wu Ltd', phone: '137 0013 7000', invite: chen.invite_code }),
    });
    check(r.status === 201, `the guest registers: ${r.status} ${await r.text()}`);
    // Ended, so that the figures stop moving; reports trail the room by up to 5 s.
    host.once('dialog', (d) => d.accept());
    await host.click('#room-close');
    await waitText(host, '#room-state', 'ended');
    let report;
    // Settled once the report has the room's end and the guest (invited by Ms Chen), read
    // after the rejection (4 registered: the dealers, Mr Zhao and the guest).
    const settled = (r, t) => Number(r.end_ms || 0) > 0 && r.funnel.ordered === 2 && r.registered === 4 && t.ranking?.length === 1;
    for (let i = 0; i < 60 && !settled(report = ctl('report', room), ctl('referrals', room)); i += 1) {
      await host.waitForTimeout(250);
    }
    check(settled(report, ctl('referrals', room)), `the report settles: ${JSON.stringify(report.funnel)}, ${report.registered} registered`);
    await host.click('#show-report');
    await host.waitForSelector('#report:not([hidden]) #report-concurrency', { timeout: WAIT_MS });
    check(await host.locator('#console').isHidden(), 'the Report view replaces the console');
    report = ctl('report', room);
    const leads = ctl('leads', room);
    const tree = ctl('referrals', room);

    const curve = report.concurrency_per_minute;
    const chart = await host.$eval('#report-concurrency', (el) => ({
      minutes: Number(el.dataset.minutes), peak: Number(el.dataset.peak), points: el.querySelector('polyline')?.getAttribute('points').split(' ').length,
    }));
    check(curve.length > 0 && chart.minutes === curve.length && chart.points === curve.length, `curve ${JSON.stringify(chart)} vs ${curve}`);
    check(chart.peak === Math.max(...curve) && chart.peak >= 2, `peak ${chart.peak} vs ${curve}`);
    const barsOf = (id) => host.$$eval(`#${id} g.bar`, (gs) => gs.map((g) => [g.dataset.label, Number(g.dataset.value)]));
    const segments = await barsOf('report-segments');
    check(JSON.stringify(segments) === JSON.stringify(report.segments.map((x) => [x.brand_name, Number(x.value_cents)])), `segments ${JSON.stringify(segments)}`);
    check(segments.some(([name, cents]) => name === 'Alpha' && cents === 30050 * 12 + 27900 * 13 + 20900),
      `Alpha sold 12 jackets at the gold 300.50, 13 at the silver 279.00 and one in the flash sale at the silver 209.00: ${JSON.stringify(segments)}`);
    const f = report.funnel;
    const funnel = await barsOf('report-funnel');
    check(JSON.stringify(funnel.map(([, n]) => n)) === JSON.stringify([f.registered, f.watched, f.applied, f.verified_dealers, f.ordered]), `funnel ${JSON.stringify(funnel)} vs ${JSON.stringify(f)}`);
    // Two imported dealers, an approved registrant and a guest registered (the rejected one
    // does not count); the dealers watched and ordered; nobody applied.
    check(JSON.stringify(funnel.map(([, n]) => n)) === '[4,2,0,2,2]', `the show's funnel: ${JSON.stringify(funnel)}`);
    const products = await barsOf('report-products');
    const best = [...report.products].sort((a, b) => Number(b.value_cents) - Number(a.value_cents))[0];
    check(products[0][0] === best.name && products[0][1] === Number(best.value_cents), `top product ${JSON.stringify(products[0])} vs ${best.name}`);
    const ranking = await barsOf('report-referrals');
    check(ranking.length === tree.ranking.length && ranking[0]?.[0] === 'Ms Chen' && ranking[0][1] === 1, `ranking ${JSON.stringify(ranking)} vs ${JSON.stringify(tree.ranking)}`);
    const rows = await host.$$eval('#report-leads tbody tr', (trs) => trs.map((tr) => [tr.dataset.viewer, Number(tr.dataset.score), tr.querySelector('.breakdown').textContent]));
    check(rows.length === leads.leads.length && rows.length >= 3, `lead rows ${rows.length} vs ${leads.leads.length}`);
    for (const [i, lead] of leads.leads.entries()) {
      check(rows[i][0] === lead.viewer_id && Math.abs(rows[i][1] - lead.score) < 0.11, `lead ${i}: ${rows[i]} vs ${lead.viewer_id} ${lead.score}`);
    }
    const ordered = rows.find(([viewer]) => viewer === chen.viewer_id);
    check(ordered && ordered[2].includes('order ×1'), `the ordering dealer's breakdown: ${ordered}`);

    // The flash sale: one unit, two grabs by two dealers, Mr Li won it, Ms Chen missed.
    const li = ctl('registrations', room).registrations.find((x) => x.name === 'Mr Li');
    check(report.flash_sales.length === 1, `one flash sale: ${JSON.stringify(report.flash_sales)}`);
    const sale = report.flash_sales[0];
    const soldOutIn = Number(sale.sold_out_ms) - Number(sale.start_ms);
    const saleRow = `#report-sales section[data-sale="${sale.sale_id}"]`;
    const figures = Object.fromEntries(await host.$$eval(`${saleRow} tr[data-figure]`, (trs) => trs.map((tr) => [tr.dataset.figure, Number(tr.dataset.value)])));
    check(JSON.stringify(figures) === JSON.stringify({ stock: 1, sold: 1, attempts: 2, 'sold-out-ms': soldOutIn, revenue: 20900 }),
      `the sale's figures ${JSON.stringify(figures)} (sold out in ${soldOutIn} ms)`);
    check(Number(sale.attempts) === 2 && sale.sold === 1 && soldOutIn > 0, `the server's forensics: ${JSON.stringify(sale)}`);
    check(await host.$eval(saleRow, (el) => el.dataset.attempters) === '2', 'two dealers tried');
    const listed = (cls) => host.$$eval(`${saleRow} .${cls} li`, (lis) => lis.map((x) => [x.dataset.viewer, Number(x.dataset.count), x.textContent]));
    const winners = await listed('winners');
    check(winners.length === 1 && winners[0][0] === li.viewer_id && winners[0][1] === 1 && winners[0][2].startsWith('Mr Li (Li Co)'), `winners ${JSON.stringify(winners)}`);
    const missed = await listed('missed');
    check(missed.length === 1 && missed[0][0] === chen.viewer_id && missed[0][1] === 1 && missed[0][2].startsWith('Ms Chen (Chen Trading)'), `missed ${JSON.stringify(missed)}`);
    check((await host.textContent(saleRow)).includes(`${(soldOutIn / 1000).toFixed(1)} s`), 'the time to sell out is shown');

    // The draw: two entrants, one winner, and the record to verify it by.
    const [drawRecord] = ctl('list-draws', room).draws;
    const draw = await host.$eval(`#report-draws tr[data-draw="${drawRecord.draw_id}"]`, (tr) => ({
      entrants: tr.dataset.entrants, winners: tr.dataset.winners, commitment: tr.querySelector('.commitment')?.textContent, seed: tr.querySelector('.seed')?.textContent,
    }));
    check(report.draws[0].entrants === 2 && JSON.stringify(draw) === JSON.stringify({
      entrants: '2', winners: '1', commitment: drawRecord.commitment, seed: drawRecord.seed,
    }) && /^[0-9a-f]{64}$/.test(draw.seed), `the draw ${JSON.stringify(draw)} vs ${JSON.stringify(drawRecord)}`);

    // The red packet: 10.00 in three shares, one opened.
    const packet = report.red_packets[0];
    const shown = await host.$eval(`#report-packets tr[data-packet="${packet.packet_id}"]`, (tr) => ({ ...tr.dataset }));
    check(shown.total === '1000' && shown.count === '3' && shown.grabbed === '1' && shown.grabbedCents === packet.grabbed_cents
      && Number(packet.grabbed_cents) > 0, `the red packet ${JSON.stringify(shown)} vs ${JSON.stringify(packet)}`);
    await host.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await host.screenshot({ path: `${ARTIFACTS}/host-report.png`, fullPage: true });
    await host.click('#show-report');
    check(await host.locator('#report').isHidden(), 'back to the console');
  });
});
