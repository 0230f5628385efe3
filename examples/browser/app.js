// The browser demo's client: panva's `dpop` for the proofs, WebCrypto for the key, fetch for
// HTTP. The whole outcome goes into #outcome as JSON (data-done="true" once finished), which
// the headless-Chromium test reads.
import * as DPoP from './vendor/dpop.js';

const report = { done: false };
const steps = document.getElementById('steps');
const outcome = document.getElementById('outcome');

function step(ok, text) {
  const li = document.createElement('li');
  li.className = ok ? 'ok' : 'no';
  li.textContent = text;
  steps.append(li);
}

// The last nonce the API gave us (RFC 9449 §8: the client uses the newest one).
let nonce;

// GET `url` with the token and a fresh proof signed by `keypair`; when the API answers
// `use_dpop_nonce` with a DPoP-Nonce, retry once with it. Every attempt is recorded.
async function callApi(url, token, keypair) {
  const attempts = [];
  for (let i = 0; i < 2; i++) {
    const proof = await DPoP.generateProof(keypair, url, 'GET', nonce, token);
    let response;
    try {
      response = await fetch(url, {
        headers: { Authorization: `DPoP ${token}`, DPoP: proof },
      });
    } catch (e) {
      // A CORS refusal is indistinguishable from a network error for the page.
      attempts.push({ network_error: String(e) });
      return { network_error: String(e), attempts };
    }
    const challenge = response.headers.get('WWW-Authenticate');
    const newNonce = response.headers.get('DPoP-Nonce');
    const body = await response.text();
    attempts.push({
      status: response.status,
      www_authenticate: challenge,
      dpop_nonce: newNonce !== null,
    });
    if (newNonce !== null) nonce = newNonce;
    const askedForNonce =
      response.status === 401 && /error="use_dpop_nonce"/.test(challenge ?? '') && newNonce !== null;
    if (askedForNonce && i === 0) continue;
    let json = null;
    try { json = JSON.parse(body); } catch { /* an empty refusal body */ }
    return {
      status: response.status,
      www_authenticate: challenge,
      nonce_retry: i === 1,
      body: json,
      attempts,
    };
  }
}

async function main() {
  const config = await (await fetch('config.json')).json();
  report.page_origin = location.origin;
  report.api_origin = config.api;
  report.cors = config.cors;

  // 1. A key the page can use but never export.
  const keypair = await DPoP.generateKeyPair('ES256');
  const jkt = await DPoP.calculateThumbprint(keypair.publicKey);
  report.key = {
    algorithm: keypair.privateKey.algorithm.name,
    curve: keypair.privateKey.algorithm.namedCurve,
    extractable: keypair.privateKey.extractable,
    jkt,
  };
  step(!keypair.privateKey.extractable, `Generated a non-extractable ES256 key (jkt ${jkt.slice(0, 12)}…)`);

  // 2. A token bound to it, from the authorization server on this origin.
  const proof = await DPoP.generateProof(keypair, config.token_endpoint, 'POST');
  const tokenResponse = await fetch(config.token_endpoint, {
    method: 'POST',
    headers: { DPoP: proof },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: config.client_id,
      client_secret: config.client_secret,
    }),
  });
  const token = await tokenResponse.json();
  report.token = {
    status: tokenResponse.status,
    token_type: token.token_type,
    obtained: tokenResponse.ok && typeof token.access_token === 'string',
  };
  step(report.token.obtained, `Token endpoint: HTTP ${tokenResponse.status}, token_type ${token.token_type}`);
  if (!report.token.obtained) return;

  // 3. The API on the other origin: preflight, nonce challenge, retry.
  const url = `${config.api}/whoami`;
  report.api = await callApi(url, token.access_token, keypair);
  if (report.api.network_error) {
    step(false, `API call failed in the browser: ${report.api.network_error} (CORS refused?)`);
  } else {
    step(report.api.status === 200,
      `API: HTTP ${report.api.status}` + (report.api.nonce_retry ? ' after one use_dpop_nonce retry' : '') +
      (report.api.body ? `, binding ${report.api.body.binding}` : ''));
  }

  // 4. A thief with the same token and its own key.
  const thief = await DPoP.generateKeyPair('ES256');
  report.stolen = await callApi(url, token.access_token, thief);
  if (report.stolen.network_error) {
    step(false, `Stolen-token call failed in the browser: ${report.stolen.network_error}`);
  } else {
    step(report.stolen.status === 401,
      `Same token, another key: HTTP ${report.stolen.status}, WWW-Authenticate: ${report.stolen.www_authenticate}`);
  }
}

try {
  await main();
} catch (e) {
  report.error = String(e && e.stack || e);
  step(false, `Error: ${e}`);
}
try {
  report.api_log = await (await fetch('api-log')).json();
} catch (e) {
  report.api_log_error = String(e);
}
report.done = true;
outcome.textContent = JSON.stringify(report, null, 2);
outcome.dataset.done = 'true';
