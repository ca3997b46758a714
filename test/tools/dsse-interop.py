"""DSSE interop with securesystemslib (Python), driven by test/lib/dsse/dsse-interop.test.ts.

Reads one JSON request on stdin, writes one JSON answer on stdout:

  {"op": "sign", "payloadType": T, "payload": B64, "keys": [{"pem": PKCS8, "keyid": K, "scheme": S}]}
      -> the envelope securesystemslib.dsse.Envelope.to_dict() writes, signed by every key
  {"op": "verify", "envelope": {...}, "keys": [{"pem": SPKI, "keyid": K, "scheme": S}], "threshold": N}
      -> {"ok": true, "keyids": [...]} or {"ok": false, "error": "..."}
  {"op": "pae", "payloadType": T, "payload": B64} -> {"pae": B64}

Schemes are securesystemslib's: ecdsa-sha2-nistp256, rsassa-pss-sha256, ed25519.
securesystemslib matches a signature's keyid to the key's before verifying (its Envelope.verify
note, issue #416), so keyids are passed through.
"""
import base64
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey


def main() -> None:
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "sign":
        env = Envelope(base64.b64decode(req["payload"]), req["payloadType"], {})
        for k in req["keys"]:
            private_key = load_pem_private_key(k["pem"].encode(), password=None)
            public = SSlibKey.from_crypto(private_key.public_key(), keyid=k["keyid"], scheme=k["scheme"])
            env.sign(CryptoSigner(private_key, public))
        out = env.to_dict()
    elif op == "verify":
        env = Envelope.from_dict(req["envelope"])
        keys = [SSlibKey.from_crypto(load_pem_public_key(k["pem"].encode()), keyid=k["keyid"], scheme=k["scheme"]) for k in req["keys"]]
        try:
            accepted = env.verify(keys, req["threshold"])
            out = {"ok": True, "keyids": sorted(accepted.keys())}
        except VerificationError as e:
            out = {"ok": False, "error": str(e)}
    elif op == "pae":
        env = Envelope(base64.b64decode(req["payload"]), req["payloadType"], {})
        out = {"pae": base64.b64encode(env.pae()).decode()}
    else:
        raise SystemExit(f"unknown op {op}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
