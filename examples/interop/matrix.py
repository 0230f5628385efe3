"""Interop matrix: third-party DPoP / mTLS clients against the example servers, one table.

    python3 -m venv target/interop-venv
    target/interop-venv/bin/pip install -r examples/interop/requirements.txt
    (cd examples/interop && npm ci)
    target/interop-venv/bin/python examples/interop/matrix.py --out target/interop-matrix.json \
        target/debug/examples/axum_resource_server target/debug/examples/actix_resource_server

It makes a throwaway PKI (CA, server cert for 127.0.0.1/localhost, client cert) with `cryptography`,
runs the Python client (requests-oauth2client) and, with --client, tower-pop's own (the pop_client
example) here, the Node clients (dpop, openid-client, oauth4webapi) through `node matrix.mjs --pki
DIR`, and, with --browser-demo, the browser demo in headless Chromium (browser.mjs); writes every row as JSON to --out
(`{"client", "version", "server", "case", "result": "pass"|"fail"|"n/a", "detail"}`), prints a
Markdown table (client x server x case) and exits 1 if any row is "fail".

Cases (each against a server started with a fresh issuer key, on 127.0.0.1 only):
  dpop   DPoPToken/DPoPKey proof with a cnf.jkt-bound token            -> 200, binding "dpop"
  nonce  server with --require-nonce: DPoPToken's response hook picks up DPoP-Nonce and retries
         -> 200 after exactly one retry. The hook only fires when WWW-Authenticate *starts with*
         "DPoP": the servers put the challenge of the scheme used first.
  mtls   HTTPS server with --client-ca; requests' cert=/verify= and a BearerToken carrying a
         cnf["x5t#S256"]-bound token                                   -> 200, binding "mtls"
  httpsig  server with --require-signature; the Python client and ours (pop_client --sign; the
         JavaScript clients: n/a). A POST with a
         JSON body, a DPoP proof and an RFC 9421 signature made by pyauth's http-message-signatures
         (an independent implementation) with the same ES256 key, keyid = its RFC 7638 thumbprint,
         covering @method @target-uri authorization content-digest (RFC 9530, computed by the
         library)                                                      -> 200, binding "dpop";
         the same, one body byte changed after signing                 -> 401;
         a valid DPoP proof but no signature                           -> 401 with Accept-Signature.
--cases picks some of the cases (default: all); clients that run none of them are skipped.
Bounded: each request 10 s, each server start 30 s, the whole run --timeout s (default 300).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from importlib.metadata import version as dist_version
from pathlib import Path

import jwskate
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from requests.adapters import HTTPAdapter
from requests_oauth2client import BearerToken, DPoPKey, DPoPToken

HERE = Path(__file__).resolve().parent
ISSUER = "https://as.interop.test"
AUDIENCE = "https://api.interop.test"
CLIENT = "requests-oauth2client"
REQUEST_TIMEOUT = 10
CASES = ("dpop", "nonce", "mtls", "httpsig")
NODE_CASES = ("dpop", "nonce", "mtls")  # the cases matrix.mjs runs
HTTPSIG_NA = "no RFC 9421 signer in this client: the case runs with http-message-signatures and pop_client"


class Deadline(Exception):
    """The run's time is up (SIGALRM) or it was told to stop (SIGTERM): wrap up, kill the servers."""


# ---------------------------------------------------------------- PKI (for the mtls cases)


def make_pki(directory: Path) -> None:
    """ca.pem, server.pem/server-key.pem (127.0.0.1, localhost), client.pem/client-key.pem."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(name: str, key: ec.EllipticCurvePrivateKey) -> None:
        (directory / name).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def issue(subject: str, key, issuer_name, issuer_key, ca: bool, extensions) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    def usage(**on) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{n: on.get(n, False) for n in names})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tower-pop interop test CA")])
    ca = issue("tower-pop interop test CA", ca_key, ca_name, ca_key, True,
               [(usage(key_cert_sign=True, crl_sign=True), True)])
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    for name, eku, san in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("interop-client.test")]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(f"interop {name}", key, ca_name, ca_key, False, [
            (usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([eku]), False),
            (x509.SubjectAlternativeName(san), False),
        ])
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(f"{name}-key.pem", key)


# ---------------------------------------------------------------- servers


class Servers:
    """Example servers started on demand, one per (binary, mode); all stopped by close()."""

    def __init__(self, workdir: Path, jwks: Path, pki: Path) -> None:
        self.workdir, self.jwks, self.pki = workdir, jwks, pki
        self.procs: list[subprocess.Popen] = []
        self.origins: dict[tuple[str, str], str | Exception] = {}
        self.missing: set[str] = set()

    def flags(self, mode: str) -> list[str]:
        return {
            "dpop": [],
            "nonce": ["--require-nonce"],
            "httpsig": ["--require-signature"],
            "mtls": ["--tls-cert", str(self.pki / "server.pem"), "--tls-key", str(self.pki / "server-key.pem"),
                     "--client-ca", str(self.pki / "ca.pem")],
        }[mode]

    def origin(self, binary: str, mode: str) -> str:
        key = (binary, mode)
        if key not in self.origins:
            try:
                self.origins[key] = self._start(binary, self.flags(mode))
            except Exception as e:  # remembered: the other cases on this server fail the same way
                self.origins[key] = e
        found = self.origins[key]
        if isinstance(found, Exception):
            raise found
        return found

    def _start(self, binary: str, flags: list[str]) -> str:
        # The binaries may be rebuilt under us: wait up to 60 s for a missing or busy file (once per
        # binary: after that its other servers fail at once, so the run stays within its bound).
        if binary in self.missing:
            raise RuntimeError(f"{binary}: missing or not executable (gave up earlier)")
        for attempt in range(13):
            n = len(self.procs)
            out, err = self.workdir / f"server-{n}.out", self.workdir / f"server-{n}.err"
            try:
                with out.open("wb") as o, err.open("wb") as e:
                    proc = subprocess.Popen(
                        [binary, "--listen", "127.0.0.1:0", "--issuer", ISSUER, "--audience", AUDIENCE,
                         "--jwks-file", str(self.jwks), *flags],
                        stdin=subprocess.DEVNULL, stdout=o, stderr=e)
                break
            except OSError:  # ENOENT, ETXTBSY (being written), EACCES
                if attempt == 12:
                    self.missing.add(binary)
                    raise
                time.sleep(5)
        self.procs.append(proc)
        # The first stdout line is "listening on http(s)://ADDR" (stdout goes to a file: never blocks).
        start = time.monotonic()
        while time.monotonic() - start < 30:
            text = out.read_text(errors="replace")
            if "\n" in text:
                origin = text.split("\n", 1)[0].removeprefix("listening on ").strip()
                if not origin.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
                    raise RuntimeError(f"unexpected first line: {text.splitlines()[0]}")
                return origin
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {err.read_text(errors='replace')[-1000:].strip()}")
            time.sleep(0.05)
        raise RuntimeError('no "listening on" line in 30 s')

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- the Python client


class CountingAdapter(HTTPAdapter):
    """Counts the requests sent, including the DPoPToken hook's retry (it calls adapter.send)."""

    count = 0

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
        self.count += 1
        return super().send(request, **kwargs)


def session() -> tuple[requests.Session, CountingAdapter]:
    s = requests.Session()
    s.trust_env = False  # no proxies, no REQUESTS_CA_BUNDLE: verify= below is what counts
    adapter = CountingAdapter()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s, adapter


def judge(res: requests.Response, binding: str, jkt: str | None, expected: int, count: int) -> tuple[str, str]:
    if res.status_code != 200:
        return "fail", f"{res.status_code} {res.headers.get('WWW-Authenticate', '')} after {count} request(s)"
    try:
        body = res.json()
    except ValueError:
        return "fail", f"200 but not JSON: {res.text[:200]}"
    if body.get("binding") != binding or body.get("sub") != "interop-user" or (jkt and body.get("jkt") != jkt):
        got = {k: body.get(k) for k in ("binding", "sub", "jkt")}
        return "fail", f"200 but {json.dumps(got)}"
    if count != expected:
        return "fail", f"200 binding {binding}, but after {count} request(s), expected {expected}"
    return "pass", f"200 binding {binding}, {count} request(s)"


def run_python(binaries: list[str], servers: Servers, issuer: jwskate.Jwk, pki: Path,
               cases: tuple[str, ...]) -> list[dict]:
    def token(cnf: dict) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "interop-user", "client_id": "interop-client",
                  "scope": "read", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), "cnf": cnf}
        return str(jwskate.Jwt.sign(claims, key=issuer, alg="ES256", typ="at+jwt"))  # kid from the key

    def dpop_case(origin: str, expected: int) -> tuple[str, str]:
        key = DPoPKey.generate(alg="ES256")
        tok = DPoPToken(access_token=token({"jkt": key.dpop_jkt}), _dpop_key=key)
        s, adapter = session()
        with s:
            res = s.get(f"{origin}/whoami", auth=tok, timeout=REQUEST_TIMEOUT)
        return judge(res, "dpop", key.dpop_jkt, expected, adapter.count)

    def mtls_case(origin: str) -> tuple[str, str]:
        der = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
        x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()  # RFC 8705 §3.1
        s, adapter = session()
        with s:
            res = s.get(f"{origin}/whoami", auth=BearerToken(access_token=token({"x5t#S256": x5t})),
                        cert=(str(pki / "client.pem"), str(pki / "client-key.pem")), verify=str(pki / "ca.pem"),
                        timeout=REQUEST_TIMEOUT)
        return judge(res, "mtls", None, 1, adapter.count)

    def httpsig_case(origin: str) -> tuple[str, str]:
        key = DPoPKey.generate(alg="ES256")
        jkt = key.dpop_jkt
        access_token = token({"jkt": jkt})
        ath = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()
        url = f"{origin}/whoami"
        body = json.dumps({"amount": 100, "to": "bob"}).encode()
        signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ECDSA_P256_SHA256,  # ES256's key and curve: the DPoP key itself
            key_resolver=MappingKeyResolver(private_keys={jkt: key.private_key.cryptography_key},
                                            public_keys={jkt: key.public_jwk.cryptography_key}))

        def request(sign: bool) -> requests.PreparedRequest:
            # Authorization and DPoP are set here, before signing (not by DPoPToken's auth hook at
            # send time), and the PreparedRequest goes out through Session.send as it is: the
            # signature covers the headers and body actually sent.
            req = requests.Request("POST", url, data=body, headers={
                "Content-Type": "application/json",
                "Authorization": f"DPoP {access_token}",
                "DPoP": str(key.proof(htm="POST", htu=url, ath=ath)),  # fresh jti each time
            }).prepare()
            if sign:  # adds Content-Digest (sha-256 of body=), Signature-Input, Signature
                signer.sign(req, key_id=jkt, created=datetime.datetime.now(datetime.timezone.utc),
                            covered_component_ids=("@method", "@target-uri", "authorization", "content-digest"),
                            body=req.body)
            return req

        def send(req: requests.PreparedRequest) -> requests.Response:
            s, _ = session()
            with s:
                return s.send(req, timeout=REQUEST_TIMEOUT, allow_redirects=False)

        def refusal(res: requests.Response) -> str:
            return f"{res.status_code} {res.headers.get('WWW-Authenticate', '')}".strip()

        failed, passed = [], []
        # 1. Signed: 200, binding "dpop", the token's sub and jkt.
        signed = request(sign=True)
        res = send(signed)
        result, detail = judge(res, "dpop", jkt, 1, 1)
        (passed if result == "pass" else failed).append(f"signed: {detail}")
        # 2. Signed, then one body byte changed (same length: Content-Length stays right). A freshly
        #    signed request rather than the one above again, so a 401 cannot come from a replay check.
        tampered = request(sign=True)
        tampered.body = body.replace(b"100", b"900", 1)
        assert tampered.body != body and len(tampered.body) == len(body)
        res = send(tampered)
        (passed if res.status_code == 401 else failed).append(f"body changed after signing: {refusal(res)}")
        # 3. A valid DPoP proof, no signature: 401 and Accept-Signature (RFC 9421 §5.1).
        res = send(request(sign=False))
        accept = res.headers.get("Accept-Signature")
        (passed if res.status_code == 401 and accept else failed).append(
            f"unsigned: {refusal(res)}; Accept-Signature: {accept if accept is not None else '(none)'}")
        signer_version = f"http-message-signatures {dist_version('http-message-signatures')}"
        if failed:
            return "fail", f"{signer_version}; FAILED: " + " | ".join(failed) + (
                "; ok: " + " | ".join(passed) if passed else "")
        return "pass", f"{signer_version}; " + " | ".join(passed)

    run = {
        "dpop": lambda origin: dpop_case(origin, 1),
        "nonce": lambda origin: dpop_case(origin, 2),
        "mtls": mtls_case,
        "httpsig": httpsig_case,
    }
    return rows_for(binaries, servers, CLIENT, dist_version(CLIENT), run, cases)


def rows_for(binaries: list[str], servers: Servers, client: str, version: str, run: dict,
             cases: tuple[str, ...]) -> list[dict]:
    """Every selected case against a server of each binary: one row each (an exception is a
    failed row, e.g. MissingDPoPNonce from a hook, a TLS error). A case that `run` maps to a
    string, or lacks, is an "n/a" row with that reason (no server started for it)."""
    rows = []
    for binary in binaries:
        for case in cases:
            todo = run.get(case, f"no {case} case for this client")
            if isinstance(todo, str):
                result, detail = "n/a", todo
            else:
                try:
                    result, detail = todo(servers.origin(binary, case))
                except Deadline:
                    raise
                except Exception as e:  # noqa: BLE001
                    result, detail = "fail", f"{type(e).__name__}: {e}"
            rows.append({"client": client, "version": version, "server": Path(binary).name,
                         "case": case, "result": result, "detail": detail})
            print(f"{result:4} {client}@{version} {Path(binary).name} {case}: {detail}", file=sys.stderr)
    return rows


# ---------------------------------------------------------------- our own client


def run_ours(binaries: list[str], servers: Servers, issuer: jwskate.Jwk, pki: Path, client: str,
             workdir: Path, cases: tuple[str, ...]) -> list[dict]:
    """tower-pop's own client (the `pop_client` example: DpopMiddleware, its nonce retry; mTLS
    with --bearer), against each server, with the same tokens and PKI as the others."""

    def token(cnf: dict) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "interop-user", "client_id": "interop-client",
                  "scope": "read", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), "cnf": cnf}
        return str(jwskate.Jwt.sign(claims, key=issuer, alg="ES256", typ="at+jwt"))

    def call(args: list[str]) -> tuple[dict, int]:
        done = subprocess.run([client, *args], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pop_client exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
        answer = json.loads(done.stdout)
        return answer, answer["requests"]

    def judge_answer(answer: dict, binding: str, jkt: str | None, expected: int, count: int) -> tuple[str, str]:
        if answer["status"] != 200:
            return "fail", f"{answer['status']} after {count} request(s)"
        body = json.loads(answer["body"])
        if body.get("binding") != binding or body.get("sub") != "interop-user" or (jkt and body.get("jkt") != jkt):
            return "fail", f"200 but {json.dumps({k: body.get(k) for k in ('binding', 'sub', 'jkt')})}"
        if count != expected:
            return "fail", f"200 binding {binding}, but after {count} request(s), expected {expected}"
        return "pass", f"200 binding {binding}, {count} request(s)"

    def dpop_case(origin: str, expected: int) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = workdir / f"pop-client-{uuid.uuid4()}.pem"
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        jkt = jwskate.Jwk.from_cryptography_key(key).thumbprint()
        answer, count = call(["--key", str(pem), "--token", token({"jkt": jkt}), f"{origin}/whoami"])
        return judge_answer(answer, "dpop", jkt, expected, count)

    def mtls_case(origin: str) -> tuple[str, str]:
        der = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
        x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        answer, count = call(["--bearer", "--token", token({"x5t#S256": x5t}), "--cert", str(pki / "client.pem"),
                              "--cert-key", str(pki / "client-key.pem"), "--ca", str(pki / "ca.pem"),
                              f"{origin}/whoami"])
        return judge_answer(answer, "mtls", None, 1, count)

    def httpsig_case(origin: str) -> tuple[str, str]:
        """--sign --data: DpopMiddleware::sign_requests against --require-signature: 200;
        the same POST unsigned: 401."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = workdir / f"pop-client-{uuid.uuid4()}.pem"
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        jkt = jwskate.Jwk.from_cryptography_key(key).thumbprint()
        data = json.dumps({"amount": 100, "to": "bob"})
        base = ["--key", str(pem), "--token", token({"jkt": jkt}), "--data", data]
        answer, count = call([*base, "--sign", f"{origin}/whoami"])
        result, detail = judge_answer(answer, "dpop", jkt, 1, count)
        if result != "pass":
            return result, f"signed: {detail}"
        unsigned, _ = call([*base, f"{origin}/whoami"])
        if unsigned["status"] != 401:
            return "fail", f"signed: {detail}; unsigned: {unsigned['status']}, expected 401"
        return "pass", f"signed: {detail}; unsigned: 401"

    run = {"dpop": lambda o: dpop_case(o, 1), "nonce": lambda o: dpop_case(o, 2), "mtls": mtls_case,
           "httpsig": httpsig_case}
    return rows_for(binaries, servers, "tower-pop client (pop_client)", workspace_version(), run, cases)


def workspace_version() -> str:
    text = (HERE.parent.parent / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1]
    return section.split('version = "', 1)[1].split('"', 1)[0]


def run_browser(browser_demo: str) -> list[dict]:
    """Chromium (headless, through playwright-core) running the browser demo: a page with a
    WebCrypto key calls an API on another origin through the CORS preset, retrying on the nonce."""
    done = subprocess.run(["node", str(HERE / "browser.mjs"), browser_demo], capture_output=True, timeout=180,
                          check=False, stdin=subprocess.DEVNULL)
    version = json.loads((HERE / "node_modules" / "playwright-core" / "package.json").read_text())["version"]
    result = "pass" if done.returncode == 0 else "fail"
    detail = "" if done.returncode == 0 else done.stdout.decode(errors="replace")[-300:]
    print(f"{result:4} chromium browser_demo dpop+nonce: {detail}", file=sys.stderr)
    return [{"client": "Chromium (playwright-core)", "version": version, "server": Path(browser_demo).name,
             "case": "nonce", "result": result, "detail": detail or "CORS preflight, DPoP, nonce retry"}]


# ---------------------------------------------------------------- the Node clients


def run_node(binaries: list[str], pki: Path, workdir: Path, budget: float) -> list[dict]:
    rows_file = workdir / "node-rows.json"
    cmd = ["node", str(HERE / "matrix.mjs"), "--pki", str(pki), "--rows", str(rows_file),
           "--deadline", str(max(int(budget) - 5, 1)), *binaries]
    # Its own session: on our timeout the whole group (node and the servers it started) is killed.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True)
    late = None
    try:
        proc.wait(timeout=budget)
    except (subprocess.TimeoutExpired, Deadline) as e:
        late = f"node matrix.mjs stopped after {budget:.0f} s" if isinstance(e, subprocess.TimeoutExpired) else str(e)
    finally:  # also on Ctrl-C
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # matrix.mjs writes its rows so far and kills its servers
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    failed = lambda detail: {"client": "matrix.mjs", "version": "-", "server": "-", "case": "run",  # noqa: E731
                             "result": "fail", "detail": detail}
    try:
        rows = json.loads(rows_file.read_text())
    except (OSError, ValueError) as e:
        rows = [failed(f"no rows from node (exit {proc.returncode}): {e}")]
    return rows + ([failed(late)] if late else [])


def select(rows: list[dict], cases: tuple[str, ...]) -> list[dict]:
    """Rows of another runner (matrix.mjs, browser.mjs): only the selected cases (and its runner
    failures, whose case is none of CASES), plus, with httpsig selected, an "n/a" httpsig row per
    client and server (no JavaScript client makes RFC 9421 signatures)."""
    kept = [r for r in rows if r["case"] in cases or r["case"] not in CASES]
    if "httpsig" not in cases:
        return kept
    groups = dict.fromkeys((r["client"], r["version"], r["server"]) for r in kept if r["case"] in CASES)
    return kept + [{"client": client, "version": ver, "server": server, "case": "httpsig", "result": "n/a",
                    "detail": HTTPSIG_NA} for (client, ver, server) in groups]


# ---------------------------------------------------------------- table


def table(rows: list[dict], columns: tuple[str, ...] = CASES) -> str:
    cell = {"pass": "pass", "fail": "**FAIL**", "n/a": "n/a"}
    lines = ["| client | server | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    groups: dict[tuple[str, str, str], dict[str, dict]] = {}
    for r in rows:
        groups.setdefault((r["client"], r["version"], r["server"]), {})[r["case"]] = r
    for (client, ver, server), cases in groups.items():
        if not any(c in cases for c in columns):
            continue  # a runner failure (deadline, node crashed): only in the notes below
        cells = [cell.get(cases[c]["result"], cases[c]["result"]) if c in cases else "-" for c in columns]
        lines.append(f"| {client} {ver} | {server} | " + " | ".join(cells) + " |")
    notes = [f"- {r['client']} / {r['server']} / {r['case']}: {r['result']}: {r['detail']}"
             for r in rows if r["result"] != "pass"]
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file for the rows")
    p.add_argument("--timeout", type=float, default=300, help="bound on the whole run, in seconds")
    p.add_argument("--client", help="the pop_client example binary (tower-pop's own client)")
    p.add_argument("--browser-demo", help="the browser_demo example binary, run in headless Chromium")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated cases to run, of {','.join(CASES)} [default: all]")
    p.add_argument("binaries", nargs="+", help="example server binaries")
    a = p.parse_args()
    cases = tuple(c.strip() for c in a.cases.split(",") if c.strip())
    if not cases or any(c not in CASES for c in cases):
        p.error(f"--cases: a comma-separated list of {', '.join(CASES)}; got {a.cases!r}")
    cases = tuple(c for c in CASES if c in cases)  # table order, no duplicates
    binaries = [str(Path(b).resolve()) for b in a.binaries]
    start = time.monotonic()

    def on_alarm(*_):  # noqa: ANN002
        raise Deadline(f"run exceeded {a.timeout:.0f} s")

    def on_term(*_):  # noqa: ANN002
        raise Deadline("stopped by SIGTERM")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)  # e.g. from `timeout`: still stop the servers
    signal.alarm(int(a.timeout))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tower-pop-matrix-") as tmp:
        workdir = Path(tmp)
        pki = workdir / "pki"
        pki.mkdir()
        make_pki(pki)
        issuer = jwskate.Jwk.generate(alg="ES256", kid="as-1")
        jwks = workdir / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**issuer.public_jwk().to_dict(), "use": "sig"}]}))
        servers = Servers(workdir, jwks, pki)
        try:
            rows += run_python(binaries, servers, issuer, pki, cases)
            if a.client:
                rows += run_ours(binaries, servers, issuer, pki, str(Path(a.client).resolve()), workdir, cases)
            servers.close()
            if a.browser_demo and "nonce" in cases:
                rows += select(run_browser(str(Path(a.browser_demo).resolve())), cases)
            if any(c in NODE_CASES for c in cases):
                rows += select(run_node(binaries, pki, workdir, a.timeout - (time.monotonic() - start) - 5), cases)
        except Deadline as e:
            rows.append({"client": "matrix.py", "version": "-", "server": "-", "case": "run", "result": "fail",
                         "detail": str(e)})
        finally:
            signal.alarm(0)
            servers.close()
    Path(a.out).write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows, cases))
    return 1 if any(r["result"] == "fail" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
