// An independent DPoP client (panva's `dpop` and `jose`) against an example server.
//
//   node examples/interop/interop.mjs target/debug/examples/axum_resource_server [--require-nonce]
//
// Starts the server on loopback with a fresh issuer key (and any extra flags given), then checks
// that a proof made by `dpop` is accepted and that replays, stolen tokens and downgrades are
// refused. With --require-nonce it also checks that a client retrying on `use_dpop_nonce` with
// the server's `DPoP-Nonce` (RFC 9449 §9) gets through. Exits 0 only
// if every check passed. Bounded: each request times out after 10 s, the whole run after 60 s.

import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as dpop from 'dpop';
import * as jose from 'jose';

const binary = process.argv[2];
const extraFlags = process.argv.slice(3);
const requireNonce = extraFlags.includes('--require-nonce');
if (!binary) {
  console.error('usage: node interop.mjs <path to example server binary>');
  process.exit(2);
}
setTimeout(() => { console.error('FAIL: interop run exceeded 60 s'); process.exit(1); }, 60_000).unref();

const ISSUER = 'https://as.interop.test';
const AUDIENCE = 'https://api.interop.test';

const as = await jose.generateKeyPair('ES256', { extractable: true });
const asJwk = { ...(await jose.exportJWK(as.publicKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
const dir = mkdtempSync(join(tmpdir(), 'tower-pop-interop-'));
// Removed however the run ends (exit handlers run on process.exit too).
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const jwksPath = join(dir, 'jwks.json');
writeFileSync(jwksPath, JSON.stringify({ keys: [asJwk] }));

const server = spawn(binary, ['--listen', '127.0.0.1:0', '--issuer', ISSUER, '--audience', AUDIENCE, '--jwks-file', jwksPath, ...extraFlags],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const firstLine = await new Promise((resolve, reject) => {
  const rl = createInterface({ input: server.stdout });
  rl.once('line', resolve);
  server.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
});
const origin = firstLine.replace('listening on ', '').trim();
const url = `${origin}/whoami`;

// Whether the first challenge of `www` is `scheme` carrying `error="code"` (any realm).
function firstError(www, scheme, code) {
  return new RegExp(`^${scheme} (realm="[^"]*", )?error="${code}"`).test(www);
}

let failures = 0;
let passes = 0;
function check(name, ok, detail = '') {
  if (ok) { passes++; console.log(`ok   ${name}`); } else { failures++; console.log(`FAIL ${name} ${detail}`); }
}

async function token(jkt) {
  return new jose.SignJWT({ client_id: 'interop', scope: 'read', cnf: { jkt } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'as-1' })
    .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('interop-user')
    .setIssuedAt().setExpirationTime('5m').setJti(crypto.randomUUID())
    .sign(as.privateKey);
}

async function call(method, headers) {
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, www: res.headers.get('www-authenticate') ?? '', nonce: res.headers.get('dpop-nonce'), body: await res.text() };
}

// The latest nonce the server gave us (RFC 9449 §8.2: use it until told otherwise).
let nonce;

// A request with a fresh proof; when the server asks for a nonce, one retry with it.
async function send(keypair, method, at, target = url) {
  let proof = await dpop.generateProof(keypair, target, method, nonce, at);
  let r = await call(method, { authorization: `DPoP ${at}`, dpop: proof });
  if (r.status === 401 && r.www.includes('error="use_dpop_nonce"') && r.nonce) {
    nonce = r.nonce;
    proof = await dpop.generateProof(keypair, target, method, nonce, at);
    r = await call(method, { authorization: `DPoP ${at}`, dpop: proof });
  }
  if (r.nonce) nonce = r.nonce;
  return { ...r, proof };
}

try {
  for (const alg of ['ES256', 'PS256', 'Ed25519']) {
    const keypair = await dpop.generateKeyPair(alg, { extractable: true });
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keypair.publicKey));
    const at = await token(jkt);
    for (const method of ['GET', 'POST']) {
      const r = await send(keypair, method, at);
      const body = r.status === 200 ? JSON.parse(r.body) : {};
      check(`${alg} ${method}: valid proof accepted`, r.status === 200 && body.sub === 'interop-user' && body.binding === 'dpop' && body.jkt === jkt, `${r.status} ${r.www}`);
      if (method === 'GET') {
        const again = await call('GET', { authorization: `DPoP ${at}`, dpop: r.proof });
        check(`${alg}: replayed proof refused`, again.status === 401 && firstError(again.www, 'DPoP', 'invalid_dpop_proof'), `${again.status} ${again.www}`);
      }
    }
    const thief = await dpop.generateKeyPair(alg);
    const stolen = await send(thief, 'GET', at);
    check(`${alg}: stolen token with another key refused`, stolen.status === 401 && firstError(stolen.www, 'DPoP', 'invalid_token'), `${stolen.status} ${stolen.www}`);
    const bearer = await call('GET', { authorization: `Bearer ${at}` });
    check(`${alg}: bound token as Bearer refused`, bearer.status === 401 && firstError(bearer.www, 'Bearer', 'invalid_token'), `${bearer.status} ${bearer.www}`);
    const mismatch = await send(keypair, 'GET', at, `${origin}/elsewhere`);
    check(`${alg}: proof for another URL refused`, mismatch.status === 401 && mismatch.www.includes('invalid_dpop_proof'), `${mismatch.status}`);
  }
  if (requireNonce) {
    const keypair = await dpop.generateKeyPair('ES256');
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keypair.publicKey));
    const at = await token(jkt);
    const bare = await call('GET', { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(keypair, url, 'GET', undefined, at) });
    check('nonce required: a proof without nonce gets use_dpop_nonce and a DPoP-Nonce',
      bare.status === 401 && firstError(bare.www, 'DPoP', 'use_dpop_nonce') && /^[A-Za-z0-9_-]+$/.test(bare.nonce ?? ''), `${bare.status} ${bare.www}`);
    const retried = await call('GET', { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(keypair, url, 'GET', bare.nonce, at) });
    check('nonce required: the retry with that nonce is accepted', retried.status === 200, `${retried.status} ${retried.www}`);
    const forged = await call('GET', { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(keypair, url, 'GET', 'forged-nonce', at) });
    check('nonce required: a made-up nonce gets use_dpop_nonce', forged.status === 401 && forged.www.includes('use_dpop_nonce'), `${forged.status} ${forged.www}`);
  }
  const none = await call('GET', {});
  check('no credentials: 401 with the DPoP challenge first, no error', none.status === 401 && /^DPoP (realm="[^"]*", )?algs="/.test(none.www) && !none.www.includes('error='), none.www);
} catch (e) {
  failures++;
  console.log(`FAIL exception: ${e.stack}`);
} finally {
  server.kill();
}
console.log(`interop: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
