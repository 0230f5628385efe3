"""An independent WebSocket client (Python `websockets`) against an example server's `/ws`, with
DPoP proofs made by requests-oauth2client's DPoPKey. Prints one JSON object of what it saw; the
Rust test (examples/tests/streams.rs) judges it.

    python ws_client.py --origin http://127.0.0.1:PORT --token AT --key client-key.pem

  echo    connect with a proof for the http URL of /ws, send "hello"      -> the echo
  close   keep the socket open until the server closes it (the token's exp) -> code, reason, seconds
          after connecting, and the Unix time it closed at
  thief   the same token with another key's proof                          -> HTTP status, challenge
Every step is bounded (10 s to connect, 15 s for the close).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import time

import jwskate
from requests_oauth2client import DPoPKey
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--origin", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--key", required=True)
    args = p.parse_args()
    with open(args.key, "rb") as f:
        key = DPoPKey(jwskate.Jwk.from_pem(f.read()), alg="ES256")
    http_url = args.origin + "/ws"
    ws_url = "ws://" + args.origin.removeprefix("http://") + "/ws"
    out: dict = {}

    def headers(signer: DPoPKey) -> dict:
        # htu is the http URL of the upgrade request (RFC 9449 §4.2, RFC 6455 §3).
        proof = str(signer.proof(htm="GET", htu=http_url, ath=ath(args.token)))
        return {"Authorization": f"DPoP {args.token}", "DPoP": proof}

    started = time.monotonic()
    async with connect(ws_url, additional_headers=headers(key), open_timeout=10, ping_interval=None) as ws:
        await ws.send("hello")
        out["echo"] = await asyncio.wait_for(ws.recv(), 10)
        try:
            await asyncio.wait_for(ws.recv(), 15)
            out["close"] = {"code": None}
        except ConnectionClosed as e:
            frame = e.rcvd
            out["close"] = {"code": frame.code if frame else None, "reason": frame.reason if frame else None,
                            "seconds": round(time.monotonic() - started, 2), "at": time.time()}
    try:
        async with connect(ws_url, additional_headers=headers(DPoPKey.generate(alg="ES256")), open_timeout=10):
            out["thief"] = {"status": 101}
    except InvalidStatus as e:
        out["thief"] = {"status": e.response.status_code,
                        "www_authenticate": e.response.headers.get("WWW-Authenticate", "")}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
