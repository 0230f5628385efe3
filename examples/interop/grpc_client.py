"""An independent gRPC client (Python grpcio, C-core) against grpc_resource_server, with DPoP
proofs made by requests-oauth2client's DPoPKey (jwskate). Prints one JSON object of what it saw;
the Rust test (examples/tests/grpc.rs) judges it.

    python grpc_client.py --target 127.0.0.1:PORT --origin http://127.0.0.1:PORT \
        --token AT --key client-key.pem --short-token AT2

Calls (each bounded by a 10 s deadline):
  ok       Get with a fresh proof by --key                 -> code, sub, binding
  replay   the same call with the very same proof          -> code, www-authenticate
  thief    Get with a proof by another key                 -> code, www-authenticate
  watch    Watch with --short-token (bound to --key), read to the end -> messages, code, seconds, Unix time at the end
  health   grpc.health.v1.Health/Check without credentials  -> code, serving
  reflect  server reflection's list_services, without credentials -> code, services
Requests are hand-encoded (GetRequest is empty; Identity is two string fields), so no generated
stubs or protoc are needed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import time

import grpc
import jwskate
from requests_oauth2client import DPoPKey

GET = "/pop.example.v1.WhoAmI/Get"
WATCH = "/pop.example.v1.WhoAmI/Watch"


def decode_identity(data: bytes) -> dict:
    """Identity { string sub = 1; string binding = 2; } from its protobuf bytes."""
    out, i = {}, 0
    while i < len(data):
        tag = data[i]
        i += 1
        length, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        value = data[i:i + length].decode()
        i += length
        out[{1: "sub", 2: "binding"}.get(tag >> 3, str(tag >> 3))] = value
    return out


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def failure(e: grpc.RpcError) -> dict:
    metadata = dict(e.trailing_metadata() or ())
    return {"code": e.code().name, "details": e.details(),
            "www_authenticate": metadata.get("www-authenticate", "")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--origin", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--short-token", required=True)
    args = p.parse_args()
    with open(args.key, "rb") as f:
        key = DPoPKey(jwskate.Jwk.from_pem(f.read()), alg="ES256")
    thief = DPoPKey.generate(alg="ES256")
    out: dict = {}
    with grpc.insecure_channel(args.target) as channel:
        get = channel.unary_unary(GET, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        watch = channel.unary_stream(WATCH, request_serializer=lambda b: b, response_deserializer=lambda b: b)

        def metadata(token: str, proof: str) -> tuple:
            return (("authorization", f"DPoP {token}"), ("dpop", proof))

        proof = str(key.proof(htm="POST", htu=args.origin + GET, ath=ath(args.token)))
        try:
            out["ok"] = {"code": "OK", **decode_identity(get(b"", metadata=metadata(args.token, proof), timeout=10))}
        except grpc.RpcError as e:
            out["ok"] = failure(e)
        for name, again in (("replay", proof),
                            ("thief", str(thief.proof(htm="POST", htu=args.origin + GET, ath=ath(args.token))))):
            try:
                get(b"", metadata=metadata(args.token, again), timeout=10)
                out[name] = {"code": "OK"}
            except grpc.RpcError as e:
                out[name] = failure(e)
        started = time.monotonic()
        proof = str(key.proof(htm="POST", htu=args.origin + WATCH, ath=ath(args.short_token)))
        messages = 0
        try:
            for message in watch(b"", metadata=metadata(args.short_token, proof), timeout=15):
                decode_identity(message)
                messages += 1
            out["watch"] = {"code": "OK", "messages": messages}
        except grpc.RpcError as e:
            out["watch"] = {**failure(e), "messages": messages}
        out["watch"]["seconds"] = round(time.monotonic() - started, 2)
        out["watch"]["at"] = time.time()
        # Open services: health (HealthCheckRequest{} is empty; SERVING is field 1 = 1) and
        # reflection (ServerReflectionRequest{list_services: ""} is field 7, an empty string).
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            out["health"] = {"code": "OK", "serving": check(b"", timeout=10) == b"\x08\x01"}
        except grpc.RpcError as e:
            out["health"] = failure(e)
        reflect = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                        request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            answer = next(iter(reflect(iter([b"\x3a\x00"]), timeout=10)))
            out["reflect"] = {"code": "OK", "services": answer.count(b"pop.example.v1.WhoAmI")}
        except grpc.RpcError as e:
            out["reflect"] = failure(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
