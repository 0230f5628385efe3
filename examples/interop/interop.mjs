// An independent DPoP client (panva's `dpop` and `jose`) against an example server.
//
//   node examples/interop/interop.mjs target/debug/examples/axum_resource_server
//
// Starts the server on loopback with a fresh issuer key, then checks that a proof made by
// `dpop` is accepted and that replays, stolen tokens and downgrades are refused. Exits 0 only
// if every check passed. Bounded: each request times out after 10 s, the whole run after 60 s.

import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as dpop from 'dpop';
import * as jose from 'jose';

const binary = process.argv[2];
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
const jwksPath = join(dir, 'jwks.json');
writeFileSync(jwksPath, JSON.stringify({ keys: [asJwk] }));

const server = spawn(binary, ['--listen', '127.0.0.1:0', '--issuer', ISSUER, '--audience', AUDIENCE, '--jwks-file', jwksPath],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const firstLine = await new Promise((resolve, reject) => {
  const rl = createInterface({ input: server.stdout });
  rl.once('line', resolve);
  server.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
});
const origin = firstLine.replace('listening on ', '').trim();
const url = `${origin}/whoami`;

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
  return { status: res.status, www: res.headers.get('www-authenticate') ?? '', body: await res.text() };
}

try {
  for (const alg of ['ES256', 'PS256', 'Ed25519']) {
    const keypair = await dpop.generateKeyPair(alg, { extractable: true });
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keypair.publicKey));
    const at = await token(jkt);
    for (const method of ['GET', 'POST']) {
      const proof = await dpop.generateProof(keypair, url, method, undefined, at);
      const r = await call(method, { authorization: `DPoP ${at}`, dpop: proof });
      const body = r.status === 200 ? JSON.parse(r.body) : {};
      check(`${alg} ${method}: valid proof accepted`, r.status === 200 && body.sub === 'interop-user' && body.binding === 'dpop' && body.jkt === jkt, `${r.status} ${r.www}`);
      if (method === 'GET') {
        const again = await call('GET', { authorization: `DPoP ${at}`, dpop: proof });
        check(`${alg}: replayed proof refused`, again.status === 401 && again.www.includes('DPoP error="invalid_dpop_proof"'), `${again.status} ${again.www}`);
      }
    }
    const thief = await dpop.generateKeyPair(alg);
    const stolen = await call('GET', { authorization: `DPoP ${at}`, dpop: await dpop.generateProof(thief, url, 'GET', undefined, at) });
    check(`${alg}: stolen token with another key refused`, stolen.status === 401 && stolen.www.includes('DPoP error="invalid_token"'), `${stolen.status} ${stolen.www}`);
    const bearer = await call('GET', { authorization: `Bearer ${at}` });
    check(`${alg}: bound token as Bearer refused`, bearer.status === 401 && bearer.www.startsWith('Bearer error="invalid_token"'), `${bearer.status} ${bearer.www}`);
    const wrongUrl = await dpop.generateProof(keypair, `${origin}/elsewhere`, 'GET', undefined, at);
    const mismatch = await call('GET', { authorization: `DPoP ${at}`, dpop: wrongUrl });
    check(`${alg}: proof for another URL refused`, mismatch.status === 401 && mismatch.www.includes('invalid_dpop_proof'), `${mismatch.status}`);
  }
  const none = await call('GET', {});
  check('no credentials: 401 with both challenges, no error', none.status === 401 && none.www.startsWith('Bearer, DPoP algs="') && !none.www.includes('error='), none.www);
} catch (e) {
  failures++;
  console.log(`FAIL exception: ${e.stack}`);
} finally {
  server.kill();
}
console.log(`interop: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
