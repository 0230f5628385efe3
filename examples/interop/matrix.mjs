// Interop matrix, Node half: third-party DPoP/OAuth clients against the example servers.
//
//   node examples/interop/matrix.mjs [--pki DIR] [--rows FILE] [--deadline SECONDS] BINARY...
//
// Normally started by matrix.py, which makes the test PKI and prints the whole table. Clients (the
// exact versions come from node_modules, pinned in package.json):
//   dpop          panva's proof library; it has no HTTP transport, so the caller sends the request
//   openid-client fetchProtectedResource with its DPoP handle (retries use_dpop_nonce by itself)
//   oauth4webapi  protectedResourceRequest with its DPoP handle (caller retries on isDPoPNonceError)
// Cases, each against a server started from BINARY with a fresh issuer key (loopback only):
//   dpop   a DPoP-bound token (cnf.jkt) with the library's proof        → 200, binding "dpop"
//   nonce  server with --require-nonce: the library's own nonce handling → 200 after exactly one retry
//   mtls   HTTPS server with --client-ca; the library presents the client certificate (through
//          an undici Agent given as its custom fetch) and a cnf["x5t#S256"] token → 200, binding "mtls"
// --pki DIR holds ca.pem, server.pem, server-key.pem, client.pem, client-key.pem (made by
// matrix.py); without it the mtls rows are "n/a". Rows ({client, version, server, case, result,
// detail}) go as JSON to --rows FILE and one line each to stdout. Exit 1 when a row is "fail".
// Bounded: each request 10 s, each server start 30 s, the whole run --deadline s (default 240).

import { spawn } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dpop from 'dpop';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import * as undici from 'undici';

// ---- command line ----
const args = process.argv.slice(2);
let pkiDir; let rowsFile; let deadline = 240;
const binaries = [];
while (args.length) {
  const a = args.shift();
  if (a === '--pki') pkiDir = args.shift();
  else if (a === '--rows') rowsFile = args.shift();
  else if (a === '--deadline') deadline = Number(args.shift());
  else binaries.push(a);
}
if (!binaries.length || !(deadline > 0)) {
  console.error('usage: node matrix.mjs [--pki DIR] [--rows FILE] [--deadline SECONDS] BINARY...');
  process.exit(2);
}

const REQUEST_TIMEOUT_MS = 10_000;
const ISSUER = 'https://as.interop.test';
const AUDIENCE = 'https://api.interop.test';
const CLIENT_ID = 'interop-client';
const version = (pkg) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;

// ---- rows, and the exit path (servers killed, temp dir removed, rows written) ----
const rows = [];
const children = new Set();
const dir = mkdtempSync(join(tmpdir(), 'tower-pop-matrix-'));
function finish(code) {
  for (const c of children) c.kill('SIGKILL');
  if (rowsFile) writeFileSync(rowsFile, JSON.stringify(rows, null, 2));
  process.exit(code);
}
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(1));
setTimeout(() => {
  rows.push({ client: 'matrix.mjs', version: '-', server: '-', case: 'deadline', result: 'fail', detail: `run exceeded ${deadline} s` });
  console.log(`FAIL matrix.mjs: run exceeded ${deadline} s`);
  finish(1);
}, deadline * 1000).unref();

function record(clientName, server, kase, result, detail) {
  const row = { client: clientName, version: version(clientName), server, case: kase, result, detail };
  rows.push(row);
  console.log(`${result.padEnd(4)} ${clientName}@${row.version} ${server} ${kase}: ${detail}`);
}

// Rejects when `p` has not settled after `ms` (a library's own timeout should fire first).
function bounded(p, ms = REQUEST_TIMEOUT_MS + 2_000) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

// ---- issuer key and tokens (RFC 9068, like interop.mjs) ----
const as = await jose.generateKeyPair('ES256', { extractable: true });
const jwksPath = join(dir, 'jwks.json');
writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...(await jose.exportJWK(as.publicKey)), kid: 'as-1', alg: 'ES256', use: 'sig' }] }));

function token(cnf) {
  return new jose.SignJWT({ client_id: CLIENT_ID, scope: 'read', cnf })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'as-1' })
    .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('interop-user')
    .setIssuedAt().setExpirationTime('5m').setJti(crypto.randomUUID())
    .sign(as.privateKey);
}

// ---- PKI (mTLS) ----
let pki;
if (pkiDir) {
  const read = (f) => readFileSync(join(pkiDir, f), 'utf8');
  pki = { ca: read('ca.pem'), cert: read('client.pem'), key: read('client-key.pem') };
  // RFC 8705 §3.1: x5t#S256 = base64url(SHA-256(DER of the client certificate)).
  pki.x5t = createHash('sha256').update(new X509Certificate(pki.cert).raw).digest('base64url');
  pki.agent = new undici.Agent({ connect: { ca: pki.ca, cert: pki.cert, key: pki.key, timeout: REQUEST_TIMEOUT_MS } });
}
const mtlsFetch = (u, init) => undici.fetch(u, { ...init, dispatcher: pki.agent });

// ---- servers: one per (binary, mode), started on first use, all killed at exit ----
const MODES = {
  plain: [],
  nonce: ['--require-nonce'],
  mtls: () => ['--tls-cert', join(pkiDir, 'server.pem'), '--tls-key', join(pkiDir, 'server-key.pem'), '--client-ca', join(pkiDir, 'ca.pem')],
};
const servers = new Map();

async function startOnce(binary, flags) {
  const child = spawn(binary, ['--listen', '127.0.0.1:0', '--issuer', ISSUER, '--audience', AUDIENCE, '--jwks-file', jwksPath, ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const rl = createInterface({ input: child.stdout });
  try {
    const line = await new Promise((resolve, reject) => {
      rl.once('line', resolve);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr.trim()}`)));
      setTimeout(() => reject(new Error('no "listening on" line in 30 s')), 30_000).unref();
    });
    const origin = line.replace('listening on ', '').trim();
    if (!/^https?:\/\/127\.0\.0\.1:\d+$/.test(origin)) throw new Error(`unexpected first line: ${line}`);
    return origin;
  } catch (e) {
    child.kill('SIGKILL');
    children.delete(child);
    throw e;
  }
}

// The binaries may be rebuilt under us: wait up to 60 s for a missing or busy file (once per
// binary: after that its other servers fail at once, so the run stays within its bound).
const missing = new Set();
async function server(binary, mode) {
  const key = `${binary}\0${mode}`;
  if (!servers.has(key)) {
    const flags = typeof MODES[mode] === 'function' ? MODES[mode]() : MODES[mode];
    servers.set(key, (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          accessSync(binary, constants.X_OK);
          return await startOnce(binary, flags);
        } catch (e) {
          if (!['ENOENT', 'ETXTBSY', 'EACCES'].includes(e.code)) throw e;
          if (attempt >= 12 || missing.has(binary)) { missing.add(binary); throw e; }
          await sleep(5_000);
        }
      }
    })());
  }
  return servers.get(key);
}

// A fetch that counts the requests a library makes (to see its retries).
function counting(inner = fetch) {
  const f = (u, init) => { f.count++; return inner(u, init); };
  f.count = 0;
  return f;
}

// A library call, bounded; a thrown error remembers how many requests had been made.
async function viaLibrary(f, promise) {
  try { return await bounded(promise); } catch (e) { if (e && typeof e === 'object') e.requests = f.count; throw e; }
}

// What the library threw (oauth4webapi and openid-client throw on any WWW-Authenticate challenge).
function describe(e) {
  const after = e?.requests === undefined ? '' : ` after ${e.requests} request(s)`;
  if (e?.response?.headers) return `${e.status ?? e.response.status} ${e.response.headers.get('www-authenticate') ?? ''}${after}`;
  return `${e?.name ?? 'Error'}: ${e?.message ?? e}${e?.cause?.message ? ` (${e.cause.message})` : ''}${after}`;
}

// 200 with the expected binding (and sub / jkt), and the expected number of requests.
async function judge(res, { binding, jkt, requests, count }) {
  const text = await res.text();
  if (res.status !== 200) return ['fail', `${res.status} ${res.headers.get('www-authenticate') ?? ''} after ${count} request(s)`];
  let body;
  try { body = JSON.parse(text); } catch { return ['fail', `200 but not JSON: ${text.slice(0, 200)}`]; }
  if (body.binding !== binding || body.sub !== 'interop-user' || (jkt && body.jkt !== jkt)) {
    return ['fail', `200 but ${JSON.stringify({ binding: body.binding, sub: body.sub, jkt: body.jkt })}`];
  }
  if (count !== requests) return ['fail', `200 binding ${binding}, but after ${count} request(s), expected ${requests}`];
  return ['pass', `200 binding ${binding}, ${count} request(s)`];
}

// ---- the clients ----
// Each case function returns [result, detail]; a thrown error is a "fail" with its message.
const CLIENTS = {
  // panva/dpop: only makes proofs (nonce is an argument); the request is sent with Node's fetch.
  dpop: {
    async dpop(origin) {
      const kp = await dpop.generateKeyPair('ES256');
      const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(kp.publicKey));
      const at = await token({ jkt });
      const f = counting();
      const url = `${origin}/whoami`;
      const res = await f(url, { headers: { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(kp, url, 'GET', undefined, at) }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      return judge(res, { binding: 'dpop', jkt, requests: 1, count: f.count });
    },
    // The library has no nonce state of its own: the caller reads DPoP-Nonce from the
    // use_dpop_nonce 401 and passes it to generateProof for the one retry (RFC 9449 §9).
    async nonce(origin) {
      const kp = await dpop.generateKeyPair('ES256');
      const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(kp.publicKey));
      const at = await token({ jkt });
      const f = counting();
      const url = `${origin}/whoami`;
      const send = async (nonce) => f(url, { headers: { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(kp, url, 'GET', nonce, at) }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      let res = await send(undefined);
      if (res.status === 401 && (res.headers.get('www-authenticate') ?? '').includes('error="use_dpop_nonce"') && res.headers.get('dpop-nonce')) {
        await res.arrayBuffer();
        res = await send(res.headers.get('dpop-nonce'));
      }
      const [result, detail] = await judge(res, { binding: 'dpop', jkt, requests: 2, count: f.count });
      return [result, `${detail} (retry by the caller: dpop only takes the nonce as an argument)`];
    },
    mtls: 'n/a: dpop only makes proofs and has no HTTP transport to present a client certificate',
  },

  // openid-client: a Configuration without discovery (only `issuer` matters for resource calls).
  'openid-client': {
    async dpop(origin) { return openidClientDPoP(origin, 1); },
    // fetchProtectedResource retries once by itself on a use_dpop_nonce challenge, with the
    // DPoP-Nonce its handle cached from the 401.
    async nonce(origin) { return openidClientDPoP(origin, 2); },
    // No TLS options of its own: config[customFetch] with an undici Agent holding the client cert,
    // as its docs show for use_mtls_endpoint_aliases; without the DPoP option it sends Bearer.
    async mtls(origin) {
      const config = new client.Configuration({ issuer: ISSUER }, CLIENT_ID);
      config.timeout = REQUEST_TIMEOUT_MS / 1000;
      const f = counting(mtlsFetch);
      config[client.customFetch] = f;
      const at = await token({ 'x5t#S256': pki.x5t });
      const res = await viaLibrary(f, client.fetchProtectedResource(config, at, new URL(`${origin}/whoami`), 'GET'));
      return judge(res, { binding: 'mtls', requests: 1, count: f.count });
    },
  },

  // oauth4webapi: the caller retries once when isDPoPNonceError (the handle has cached the nonce).
  oauth4webapi: {
    async dpop(origin) { return oauth4webapiDPoP(origin, 1); },
    async nonce(origin) { return oauth4webapiDPoP(origin, 2); },
    // [customFetch] with the undici Agent holding the client cert; no DPoP option → Bearer.
    async mtls(origin) {
      const f = counting(mtlsFetch);
      const at = await token({ 'x5t#S256': pki.x5t });
      const res = await viaLibrary(f, oauth.protectedResourceRequest(at, 'GET', new URL(`${origin}/whoami`), new Headers(), null,
        { [oauth.customFetch]: f, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }));
      return judge(res, { binding: 'mtls', requests: 1, count: f.count });
    },
  },
};

async function openidClientDPoP(origin, requests) {
  const config = new client.Configuration({ issuer: ISSUER }, CLIENT_ID);
  client.allowInsecureRequests(config); // the plain servers are http:// on loopback
  config.timeout = REQUEST_TIMEOUT_MS / 1000;
  const f = counting();
  config[client.customFetch] = f;
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const jkt = await DPoP.calculateThumbprint();
  const at = await token({ jkt });
  const res = await viaLibrary(f, client.fetchProtectedResource(config, at, new URL(`${origin}/whoami`), 'GET', undefined, undefined, { DPoP }));
  return judge(res, { binding: 'dpop', jkt, requests, count: f.count });
}

async function oauth4webapiDPoP(origin, requests) {
  const DPoP = oauth.DPoP({ client_id: CLIENT_ID }, await oauth.generateKeyPair('ES256'));
  const jkt = await DPoP.calculateThumbprint();
  const at = await token({ jkt });
  const f = counting();
  const url = new URL(`${origin}/whoami`);
  const opts = () => ({ DPoP, [oauth.allowInsecureRequests]: true, [oauth.customFetch]: f, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  let res;
  try {
    res = await viaLibrary(f, oauth.protectedResourceRequest(at, 'GET', url, new Headers(), null, opts()));
  } catch (e) {
    if (!oauth.isDPoPNonceError(e)) throw e; // the documented pattern: retry once on use_dpop_nonce
    res = await viaLibrary(f, oauth.protectedResourceRequest(at, 'GET', url, new Headers(), null, opts()));
  }
  return judge(res, { binding: 'dpop', jkt, requests, count: f.count });
}

// ---- run ----
const CASE_MODE = { dpop: 'plain', nonce: 'nonce', mtls: 'mtls' };
for (const binary of binaries) {
  const name = basename(binary);
  for (const [clientName, cases] of Object.entries(CLIENTS)) {
    for (const [kase, mode] of Object.entries(CASE_MODE)) {
      const run = cases[kase];
      if (typeof run === 'string') { record(clientName, name, kase, 'n/a', run.replace(/^n\/a: /, '')); continue; }
      if (mode === 'mtls' && !pki) { record(clientName, name, kase, 'n/a', 'no --pki given (run through matrix.py)'); continue; }
      try {
        const origin = await server(binary, mode);
        const [result, detail] = await run(origin);
        record(clientName, name, kase, result, detail);
      } catch (e) {
        record(clientName, name, kase, 'fail', describe(e));
      }
    }
  }
}
finish(rows.some((r) => r.result === 'fail') ? 1 : 0);
