// Headless Chromium drives the host console through an organiser's whole set-up, from an empty server: a new room, brands, a catalogue and a dealer list (each checked by a dry run first), a channel link, going live, then the imported dealers' orders confirmed in bulk and exported. What the server holds is read back with `ctl --json`. Environment: see console.sh.
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
    await host.fill('#product-form input[name=price_gold]', '3,00');
    await host.click('#product-form button[type=submit]');
    await waitText(host, '#product-form .error', 'Price gold: write it like 12.50');
    await host.fill('#product-form input[name=price_gold]', '300.5');
    await host.fill('#product-form input[name=moq]', '12');
    await host.click('#product-form button[type=submit]');
    await host.waitForSelector('#product-form', { state: 'hidden', timeout: WAIT_MS });
    await waitText(host, '#catalog-products li', 'moq 12');
    const jacket = ctl('list-products', room).products.find((p) => p.name === 'Down jacket');
    check(jacket.prices[0].price_cents === '30050' && jacket.min_order_quantity === 12, `jacket ${JSON.stringify(jacket.prices)} moq ${jacket.min_order_quantity}`);
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

  await step('a screenshot of the console after the set-up', async () => {
    await host.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await host.screenshot({ path: `${ARTIFACTS}/host-console-setup.png`, fullPage: true });

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
    for (let i = 0; i < 40; i += 1) {
      report = ctl('report', room);
      if (report.end_ms !== '0' && report.funnel.ordered === 2 && report.registered === 3) break;
      await host.waitForTimeout(250);
    }
    check(report.funnel.ordered === 2 && report.registered === 3, `the report settles: ${JSON.stringify(report.funnel)}`);
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
    check(segments.some(([name, cents]) => name === 'Alpha' && cents === 30050 * 12 + 27900 * 13), `Alpha sold 12 jackets at the gold 300.50 and 13 at the silver 279.00: ${JSON.stringify(segments)}`);
    const f = report.funnel;
    const funnel = await barsOf('report-funnel');
    check(JSON.stringify(funnel.map(([, n]) => n)) === JSON.stringify([f.registered, f.watched, f.applied, f.verified_dealers, f.ordered]), `funnel ${JSON.stringify(funnel)} vs ${JSON.stringify(f)}`);
    // Two imported dealers and a guest registered; the dealers watched and ordered; nobody applied.
    check(JSON.stringify(funnel.map(([, n]) => n)) === '[3,2,0,2,2]', `the show's funnel: ${JSON.stringify(funnel)}`);
    const products = await barsOf('report-products');
    const best = [...report.products].sort((a, b) => Number(b.value_cents) - Number(a.value_cents))[0];
    check(products[0][0] === best.name && products[0][1] === Number(best.value_cents), `top product ${JSON.stringify(products[0])} vs ${best.name}`);
    const ranking = await barsOf('report-referrals');
    check(ranking.length === tree.ranking.length && ranking[0][0] === 'Ms Chen' && ranking[0][1] === 1, `ranking ${JSON.stringify(ranking)}`);
    const rows = await host.$$eval('#report-leads tbody tr', (trs) => trs.map((tr) => [tr.dataset.viewer, Number(tr.dataset.score), tr.querySelector('.breakdown').textContent]));
    check(rows.length === leads.leads.length && rows.length >= 3, `lead rows ${rows.length} vs ${leads.leads.length}`);
    for (const [i, lead] of leads.leads.entries()) {
      check(rows[i][0] === lead.viewer_id && Math.abs(rows[i][1] - lead.score) < 0.11, `lead ${i}: ${rows[i]} vs ${lead.viewer_id} ${lead.score}`);
    }
    const ordered = rows.find(([viewer]) => viewer === chen.viewer_id);
    check(ordered && ordered[2].includes('order ×1'), `the ordering dealer's breakdown: ${ordered}`);
    await host.screenshot({ path: `${ARTIFACTS}/host-report.png`, fullPage: true });
    await host.click('#show-report');
    check(await host.locator('#report').isHidden(), 'back to the console');
  });

  });
});
