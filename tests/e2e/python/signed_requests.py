"""Signed requests to a did:key session from Python (docs/CONTRACT.md, "Signed requests").

Only the contract is used, no TypeScript code: an Ed25519 key from PyCA
cryptography, its did:key (multicodec 0xed 0x01, base58btc, by hand below),
and each request's `auth`: the signature over

    "agent-hypervisor.request/1:" + sha256_hex(canonical_json({update, sessionId, request, nonce, issuedAt}))

First the test vector of contract/vectors/signed-request.json is checked byte
for byte, so this file's canonical JSON and signing input are the contract's.

    python signed_requests.py --address 127.0.0.1:7233 --vector contract/vectors/signed-request.json \\
        --session-id s1 --key-file py.key join --sigma 0.8 --actions '[...]'
    python signed_requests.py … --key-file py.key approve --saga-id g1 --step-id step-1 --digest <hex>

`join` writes a new key to --key-file (mode 0600) and joins with it; `approve`
reads it and approves a step, bound to its digest. Prints one JSON object.
"""
import argparse
import asyncio
import hashlib
import json
import math
import os
import secrets
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from temporalio.client import Client

SIGNING_CONTEXT = "agent-hypervisor.request/1:"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n > 0:
        n, r = divmod(n, 58)
        out = BASE58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def did_key(public_key: bytes) -> str:
    # multicodec ed25519-pub (0xed, as the varint 0xed 0x01), then multibase base58btc ("z").
    return "did:key:z" + base58btc(bytes([0xED, 0x01]) + public_key)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def js_number(x: float) -> str:
    """A number as JavaScript writes it (Number.prototype.toString): what the session canonicalises."""
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))  # exact below 2^53-ish; above, JavaScript writes the shortest digits then zeros
    digits, _, exp = repr(x).partition("e")  # repr: the shortest digits that round-trip, as in JavaScript
    if not exp:
        return digits  # Python and JavaScript both write 1e-4 <= |x| < 1e16 without an exponent
    e = int(exp)
    sign = "-" if digits.startswith("-") else ""
    mantissa = digits.lstrip("-")
    if -7 < e < 21:  # JavaScript writes these without an exponent
        whole, _, frac = mantissa.partition(".")
        point = len(whole) + e
        d = (whole + frac).ljust(point, "0")
        body = d[:point] + ("." + d[point:] if d[point:] else "") if point > 0 else "0." + "0" * -point + d
        return sign + body
    return f"{sign}{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"


def canonical_json(v) -> str:
    """Sorted keys (by UTF-16 code units, as JavaScript sorts), no spaces, JSON.stringify's escapes."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return js_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {type(v).__name__}")


def payload_hash(update: str, session_id: str, request: dict, nonce: str, issued_at: int) -> str:
    payload = {"update": update, "sessionId": session_id, "request": request, "nonce": nonce, "issuedAt": issued_at}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def sign(key: Ed25519PrivateKey, update: str, session_id: str, request: dict) -> dict:
    """The request with `auth`: one entry, by this key's did:key."""
    nonce = secrets.token_urlsafe(16)
    issued_at = int(time.time() * 1000)
    digest = payload_hash(update, session_id, request, nonce, issued_at)
    signature = key.sign((SIGNING_CONTEXT + digest).encode("utf-8")).hex()
    return {**request, "auth": [{"signer": did_key(public_bytes(key)), "nonce": nonce, "issuedAt": issued_at, "signature": signature}]}


def check_vector(path: str) -> None:
    """The contract's test vector, recomputed here: the key's DID, the payload, its hash, the signature."""
    with open(path, encoding="utf-8") as f:
        v = json.load(f)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["secretKey"]))
    assert public_bytes(key).hex() == v["publicKey"], "public key"
    assert did_key(public_bytes(key)) == v["did"], "did:key"
    payload = {"update": v["update"], "sessionId": v["sessionId"], "request": v["request"], "nonce": v["nonce"], "issuedAt": v["issuedAt"]}
    assert canonical_json(payload) == v["payload"], "canonical JSON of the payload"
    digest = hashlib.sha256(v["payload"].encode("utf-8")).hexdigest()
    assert digest == v["payloadHash"], "payload hash"
    assert SIGNING_CONTEXT + digest == v["signingInput"], "signing input"
    assert key.sign(v["signingInput"].encode("utf-8")).hex() == v["signature"], "signature (Ed25519 is deterministic)"
    Ed25519PublicKey.from_public_bytes(public_bytes(key)).verify(bytes.fromhex(v["signature"]), v["signingInput"].encode("utf-8"))


def new_key(path: str) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed.hex())
    return key


def load_key(path: str) -> Ed25519PrivateKey:
    with open(path, encoding="utf-8") as f:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="127.0.0.1:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--vector", required=True)
    parser.add_argument("--session-id", required=True)
    parser.add_argument("--key-file", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    join = sub.add_parser("join")
    join.add_argument("--sigma", type=float, required=True)
    join.add_argument("--actions", default="[]")
    approve = sub.add_parser("approve")
    approve.add_argument("--saga-id", required=True)
    approve.add_argument("--step-id", required=True)
    approve.add_argument("--digest", required=True)
    args = parser.parse_args()

    check_vector(args.vector)
    client = await Client.connect(args.address, namespace=args.namespace)
    session = client.get_workflow_handle(f"hv-session-{args.session_id}")
    if args.command == "join":
        key = new_key(args.key_file)
        did = did_key(public_bytes(key))
        request = {"agentDid": did, "sigmaRaw": args.sigma, "actions": json.loads(args.actions)}
        result = await session.execute_update("join", sign(key, "join", args.session_id, request))
    else:
        key = load_key(args.key_file)
        did = did_key(public_bytes(key))
        request = {"sagaId": args.saga_id, "stepId": args.step_id, "digest": args.digest, "approverDid": did}
        result = await session.execute_update("approve", sign(key, "approve", args.session_id, request))
    print(f"{args.command} as {did} accepted", file=sys.stderr)
    print(json.dumps({"did": did, "vector": True, "result": result}))


if __name__ == "__main__":
    asyncio.run(main())
    # The answer is printed and flushed: leave without the interpreter's finalization, where the SDK's native
    # runtime threads have aborted it (PyGILState_Release while finalizing, SIGABRT) after a run that succeeded.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
