// The browser demo in real headless Chromium (Debian's `chromium`, driven by playwright-core over
// CDP; no browser download): the page's outcome, and what the API saw, with and without the
// CORS preset.
//
//   node examples/interop/browser.mjs target/debug/examples/browser_demo
//
// CHROMIUM overrides the browser binary (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const demo = process.argv[2] ?? 'target/debug/examples/browser_demo';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--no-first-run',
];

/** Start the demo on free loopback ports; resolve with its page and API URLs. */
function startDemo(extra) {
  const child = spawn(demo, ['--page-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('browser_demo did not start within 30 s')), 30_000);
    const urls = {};
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`browser_demo exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [name, url] = line.split(' ');
      if (name === 'page' || name === 'api') urls[name] = url;
      if (urls.page && urls.api) {
        clearTimeout(timer);
        resolve({ child, ...urls });
      }
    });
  });
}

let context;
let profile;
before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'tower-pop-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
});
after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Load the page of a demo started with `extra`; the outcome JSON it reports, bounded. */
async function outcome(extra) {
  const server = await startDemo(extra);
  try {
    const page = await context.newPage();
    await page.goto(server.page);
    await page.waitForSelector('#outcome[data-done="true"]', { timeout: 30_000 });
    const report = JSON.parse(await page.textContent('#outcome'));
    await page.close();
    return { server, report };
  } finally {
    server.child.kill();
  }
}

const preflights = (log) =>
  log.filter((e) => e.method === 'OPTIONS' && e.path === '/whoami');

test('with the CORS preset, a page on another origin uses DPoP: preflight, nonce retry, stolen token refused', async () => {
  const { server, report } = await outcome([]);
  assert.equal(report.error, undefined, report.error);
  assert.equal(report.api_origin, server.api);
  assert.notEqual(report.page_origin, new URL(server.api).origin, 'two origins');

  // The key: ES256, non-extractable.
  assert.deepEqual([report.key.algorithm, report.key.curve, report.key.extractable], ['ECDSA', 'P-256', false]);
  // The token, bound by the authorization server after checking the page's proof.
  assert.deepEqual(report.token, { status: 200, token_type: 'DPoP', obtained: true });

  // The API call: the first answer asks for a nonce, readable only through Expose-Headers; the
  // retry with it succeeds, and the token is bound to the page's key.
  const api = report.api;
  assert.equal(api.network_error, undefined, api.network_error);
  assert.equal(api.attempts.length, 2, JSON.stringify(api.attempts));
  assert.equal(api.attempts[0].status, 401);
  assert.match(api.attempts[0].www_authenticate, /DPoP error="use_dpop_nonce"/);
  assert.equal(api.attempts[0].dpop_nonce, true);
  assert.equal(api.nonce_retry, true);
  assert.equal(api.status, 200);
  assert.equal(api.body.binding, 'dpop');
  assert.equal(api.body.jkt, report.key.jkt);

  // The preflight: answered by the CORS layer (200, the page origin allowed), never by the
  // verifier, before the browser sent the call.
  const seen = preflights(report.api_log);
  assert.ok(seen.length >= 1, JSON.stringify(report.api_log));
  const preflight = seen[0];
  assert.equal(preflight.status, 200);
  assert.equal(preflight.origin, report.page_origin);
  assert.equal(preflight.access_control_allow_origin, report.page_origin);
  const requested = preflight.access_control_request_headers.split(',').map((h) => h.trim());
  assert.ok(requested.includes('authorization') && requested.includes('dpop'), requested.join());
  const first = report.api_log.indexOf(preflight);
  assert.ok(
    report.api_log.slice(first + 1).some((e) => e.method === 'GET' && e.status === 200),
    'the call came after the preflight',
  );

  // The stolen token with another key: 401, and the page could read why.
  const stolen = report.stolen;
  assert.equal(stolen.network_error, undefined, stolen.network_error);
  assert.equal(stolen.status, 401);
  assert.match(stolen.www_authenticate, /DPoP error="invalid_token"/);
});

test('without the CORS preset, the browser refuses: the preflight reaches the verifier and fails', async () => {
  const { report } = await outcome(['--no-cors']);
  assert.equal(report.error, undefined, report.error);
  assert.equal(report.cors, false);
  // The same-origin token request still works.
  assert.equal(report.token.obtained, true);
  // The page sees only a network error, for both calls.
  assert.match(report.api.network_error ?? '', /TypeError/);
  assert.match(report.stolen.network_error ?? '', /TypeError/);
  // The API saw preflights only, refused by the verifier without CORS headers; no call came.
  const seen = preflights(report.api_log);
  assert.ok(seen.length >= 1, JSON.stringify(report.api_log));
  for (const p of seen) {
    assert.equal(p.status, 401);
    assert.equal(p.access_control_allow_origin, null);
  }
  assert.ok(!report.api_log.some((e) => e.method === 'GET'), JSON.stringify(report.api_log));
});
