#!/usr/bin/python3
"""Test key material and tokens for tests/providers/test_jwt.c and test_jwks.c.

Keys are generated into a temporary directory at test time, so no private
key is ever committed. Tokens are signed by libraries independent of the
code under test: PyJWT for well-formed tokens, python's cryptography and
hmac modules for the hand-built ones (PyJWT refuses to build attacks).

  jwtgen.py serve DIR
      writes DIR/<name>.pem (private) and DIR/<name>.jwk.json (public JWK,
      kid <name>) for k1, k2, k3 (RSA 2048), weak (RSA 1024) and ec (P-256),
      prints "ready", then answers one request per line until end of input,
      and removes what it wrote. A request is a JSON object:
        key      key name (default k1); the header kid is the key name
                 unless "headers" sets another
        alg      RS256 (default), RS384, ... : PyJWT signs
                 none : unsigned token, empty signature
                 HS256-pubkey : HMAC-SHA256 keyed with the public key PEM
                 raw : "header" and "claims" are used byte for byte and
                       signed RS256 with cryptography (bad headers, duplicates)
        claims   claims as JSON text
        headers  extra header fields as JSON text (all but raw)
        header   raw header text (raw only)
      The answer is the token, or "error: <why>", on one line.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

KEYS = {"k1": 2048, "k2": 2048, "k3": 2048, "weak": 1024}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint_b64(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def keygen(d):
    """Writes the key files; returns the private keys by name (loading a PEM
    again costs ~40 ms in key checks, so tokens are signed from these)."""
    keys = {}
    for name, bits in KEYS.items():
        key = keys[name] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pub = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": name, "n": uint_b64(pub.n), "e": uint_b64(pub.e)}
        write(os.path.join(d, name + ".pem"), private_pem(key))
        write(os.path.join(d, name + ".jwk.json"), json.dumps(jwk).encode())
    key = keys["ec"] = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    jwk = {"kty": "EC", "use": "sig", "alg": "ES256", "kid": "ec", "crv": "P-256",
           "x": b64url(pub.x.to_bytes(32, "big")), "y": b64url(pub.y.to_bytes(32, "big"))}
    write(os.path.join(d, "ec.pem"), private_pem(key))
    write(os.path.join(d, "ec.jwk.json"), json.dumps(jwk).encode())
    return keys


def hand_built(header, claims, sign):
    signing_input = b64url(header) + "." + b64url(claims)
    return signing_input + "." + b64url(sign(signing_input.encode()))


def sign(keys, req):
    name = req.get("key", "k1")
    alg = req.get("alg", "RS256")
    key = keys[name]
    if alg == "raw":
        rs256 = lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA256())
        return hand_built(req["header"].encode(), req["claims"].encode(), rs256)
    claims = json.loads(req["claims"])
    headers = {"kid": name}
    headers.update(json.loads(req.get("headers") or "{}"))
    if alg in ("none", "HS256-pubkey"):
        real_alg = "none" if alg == "none" else "HS256"
        header = json.dumps(dict({"alg": real_alg, "typ": "JWT"}, **headers)).encode()
        if alg == "none":
            return hand_built(header, json.dumps(claims).encode(), lambda m: b"")
        secret = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        hs = lambda m: hmac.new(secret, m, hashlib.sha256).digest()
        return hand_built(header, json.dumps(claims).encode(), hs)
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def clean(d):
    for name in list(KEYS) + ["ec"]:
        for suffix in (".pem", ".jwk.json"):
            try:
                os.unlink(os.path.join(d, name + suffix))
            except FileNotFoundError:
                pass
    os.rmdir(d)


def serve(d):
    keys = keygen(d)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            answer = sign(keys, json.loads(line))
        except Exception as e:  # report to the test, keep serving
            answer = "error: %r" % (e,)
        print(answer, flush=True)


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        sys.exit("usage: jwtgen.py serve DIR")
    try:
        serve(sys.argv[2])
    finally:
        clean(sys.argv[2])


if __name__ == "__main__":
    main()
