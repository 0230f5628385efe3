// An independent DPoP server (panva's `jose`) that requires nonces it issued, for the client tests.
//
//   node examples/interop/nonce_server.mjs
//
// Listens on two loopback ports and prints one JSON line: {"token": "<url>", "bearer_token":
// "<url>", "resource": "<url>", "requests": "<url>"}; GET requests answers how many requests
// reached the token endpoints and the resource: {"token": n, "resource": m}.
// - The token endpoint (RFC 9449 §5, §8) takes a POST form with a DPoP proof (no `ath`). A proof
//   without a nonce this server issued gets 400 {"error":"use_dpop_nonce"} and a DPoP-Nonce;
//   a good one gets an opaque access token bound to the proof key, token_type DPoP.
//   `bearer_token` answers the same request with token_type Bearer (a client must refuse it).
// - The resource (RFC 9449 §7, §9) takes `Authorization: DPoP <token>` and a proof whose `ath`,
//   key and nonce fit; a missing or unknown nonce gets 401 `WWW-Authenticate: DPoP
//   error="use_dpop_nonce"` and a DPoP-Nonce.
// Every proof is checked with jose's jwtVerify + EmbeddedJWK: typ dpop+jwt, an asymmetric alg,
// htm, htu (this server's own URL, query and fragment dropped), iat within 60 s, jti used once.
// Every answer carries a fresh DPoP-Nonce (RFC 9449 §8.2). The server exits by itself after
// 120 s.

import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import * as jose from 'jose';

setTimeout(() => process.exit(0), 120_000).unref();

const ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA', 'Ed25519'];
const MAX_KEPT = 1000;

// Bounded sets: the last MAX_KEPT nonces issued and jtis seen.
function boundedSet() {
  const set = new Set();
  return {
    add(v) { set.add(v); if (set.size > MAX_KEPT) set.delete(set.values().next().value); },
    has(v) { return set.has(v); },
  };
}
const nonces = { token: boundedSet(), resource: boundedSet() };
const jtis = boundedSet();
const tokens = new Map(); // access token -> jkt
const requests = { token: 0, resource: 0 }; // answered at GET /requests on the token port

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const sha256 = (s) => b64url(createHash('sha256').update(s).digest());

function issueNonce(role) {
  const nonce = b64url(randomBytes(16));
  nonces[role].add(nonce);
  return nonce;
}

class Refusal extends Error {
  constructor(error) { super(error); this.error = error; }
}

// Checks one DPoP proof; returns its key's RFC 7638 thumbprint.
async function checkProof(req, url, role, accessToken) {
  const proof = req.headers.dpop;
  if (typeof proof !== 'string' || proof.includes(',')) throw new Refusal('invalid_dpop_proof');
  let payload, protectedHeader;
  try {
    ({ payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
      typ: 'dpop+jwt', algorithms: ALGS, maxTokenAge: '60s', clockTolerance: 10,
    }));
  } catch {
    throw new Refusal('invalid_dpop_proof');
  }
  const htu = `${url.origin}${url.pathname}`;
  if (payload.htm !== req.method || payload.htu !== htu || typeof payload.jti !== 'string') {
    throw new Refusal('invalid_dpop_proof');
  }
  if (accessToken === undefined ? payload.ath !== undefined : payload.ath !== sha256(accessToken)) {
    throw new Refusal('invalid_dpop_proof');
  }
  if (typeof payload.nonce !== 'string' || !nonces[role].has(payload.nonce)) {
    throw new Refusal('use_dpop_nonce');
  }
  if (jtis.has(payload.jti)) throw new Refusal('invalid_dpop_proof');
  jtis.add(payload.jti);
  return jose.calculateJwkThumbprint(protectedHeader.jwk);
}

function answer(res, status, headers, body) {
  res.writeHead(status, { 'cache-control': 'no-store', ...headers });
  res.end(body);
}

async function tokenEndpoint(req, res, url, tokenType) {
  requests.token++;
  const nonce = issueNonce('token');
  const json = { 'content-type': 'application/json', 'dpop-nonce': nonce };
  if (req.method !== 'POST') return answer(res, 405, json, '{"error":"invalid_request"}');
  const form = new URLSearchParams(await readBody(req));
  if (form.get('grant_type') !== 'client_credentials') {
    return answer(res, 400, json, '{"error":"unsupported_grant_type"}');
  }
  if (form.get('client_id') !== 'node-client' || form.get('client_secret') !== 'node-secret') {
    return answer(res, 401, json, '{"error":"invalid_client"}');
  }
  try {
    const jkt = await checkProof(req, url, 'token', undefined);
    const accessToken = b64url(randomBytes(24));
    tokens.set(accessToken, jkt);
    answer(res, 200, json, JSON.stringify({ access_token: accessToken, token_type: tokenType, expires_in: 300 }));
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    answer(res, 400, json, JSON.stringify({ error: e.error, error_description: 'DPoP proof refused' }));
  }
}

async function resource(req, res, url) {
  requests.resource++;
  await readBody(req);
  const nonce = issueNonce('resource');
  const auth = req.headers.authorization ?? '';
  const [scheme, accessToken] = auth.split(' ');
  try {
    if (scheme?.toLowerCase() !== 'dpop' || !tokens.has(accessToken)) throw new Refusal('invalid_token');
    const jkt = await checkProof(req, url, 'resource', accessToken);
    if (jkt !== tokens.get(accessToken)) throw new Refusal('invalid_token');
    answer(res, 200, { 'content-type': 'application/json', 'dpop-nonce': nonce },
      JSON.stringify({ method: req.method, jkt }));
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    answer(res, 401, { 'www-authenticate': `DPoP error="${e.error}", algs="${ALGS.join(' ')}"`, 'dpop-nonce': nonce }, '');
  }
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new Error('body too large');
  }
  return body;
}

function serve(handler) {
  const server = createServer((req, res) => {
    // This server's own origin, never the client's Host header.
    const url = new URL(req.url, `http://127.0.0.1:${req.socket.localPort}`);
    handler(req, res, url).catch(() => answer(res, 500, {}, ''));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// The token endpoint and the resource on two origins, as an authorization server and a resource
// server are: each has its own nonces.
const asPort = await serve((req, res, url) => {
  if (url.pathname === '/token') return tokenEndpoint(req, res, url, 'DPoP');
  if (url.pathname === '/bearer-token') return tokenEndpoint(req, res, url, 'Bearer');
  if (url.pathname === '/requests') {
    return Promise.resolve(answer(res, 200, { 'content-type': 'application/json' }, JSON.stringify(requests)));
  }
  return Promise.resolve(answer(res, 404, {}, ''));
});
const rsPort = await serve((req, res, url) =>
  url.pathname === '/resource' ? resource(req, res, url) : Promise.resolve(answer(res, 404, {}, '')));
console.log(JSON.stringify({
  token: `http://127.0.0.1:${asPort}/token`,
  bearer_token: `http://127.0.0.1:${asPort}/bearer-token`,
  resource: `http://127.0.0.1:${rsPort}/resource`,
  requests: `http://127.0.0.1:${asPort}/requests`,
}));
