#!/usr/bin/env python3
"""Recomputes the format 2 test vectors of docs/format.md from the format's prose, with Python's
`cryptography` alone: no code shared with veilfs or its Rust crates. Unwraps both slots of the
documented config (Argon2id, HKDF, AES-SIV with the documented associated data), checks its MAC
over the documented transcript, and every `vector v2` value.

Usage: check_format_v2.py [docs/format.md]. Exit status 0 when everything matches, 1 otherwise
(each mismatch printed), 2 when `cryptography` (with Argon2id: version 44 or later) is missing.
"""

import base64
import hashlib
import hmac
import json
import struct
import sys

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as e:
    print(f"check_format_v2.py: needs cryptography >= 44 (with Argon2id): {e}", file=sys.stderr)
    sys.exit(2)


def b64url(text):
    """RFC 4648 base64url without padding, strictly."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text, text
    return raw


def hkdf(ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


def blocks(text):
    """The `vector v2` values and the `json veilfs.conf v2` block of format.md."""
    vectors, config, lines = {}, None, iter(text.splitlines())
    for line in lines:
        if not line.startswith("```"):
            continue
        info = line[3:].strip()
        body = []
        for inner in lines:
            if inner == "```":
                break
            body.append(inner)
        if info == "vector v2":
            for entry in body:
                entry = entry.strip()
                if entry and not entry.startswith("#"):
                    name, value = entry.split(" = ", 1)
                    vectors[name] = value
        elif info == "json veilfs.conf v2":
            config = "".join(line + "\n" for line in body)
    return vectors, config


class Transcript:
    """format.md, "The MAC": lengths and integers big-endian, absent as ff ff ff ff."""

    def __init__(self):
        self.out = bytearray()

    def bytes(self, value):
        self.out += struct.pack(">I", len(value)) + value

    def int(self, value):
        self.out += struct.pack(">Q", value)

    def absent(self):
        self.out += b"\xff\xff\xff\xff"


def transcript(config):
    t = Transcript()
    t.bytes(b"veilfs v2 config")
    t.int(config["format"])
    t.bytes(b64url(config["vault_id"]))
    t.bytes(config["creator"].encode())
    t.int(config["generation"])
    t.bytes(config["features"]["name_encoding"].encode())
    t.int(config["features"]["longname_max"])
    t.int(len(config["slots"]))
    for slot in config["slots"]:
        t.bytes(b64url(slot["id"]))
        t.bytes(slot["kind"].encode())
        t.bytes(slot["label"].encode())
        t.bytes(slot["created"].encode())
        kdf = slot.get("kdf")
        if kdf is None:
            t.absent()
        else:
            t.bytes(kdf["algorithm"].encode())
            t.int(kdf["version"])
            t.int(kdf["memory_kib"])
            t.int(kdf["iterations"])
            t.int(kdf["parallelism"])
            t.bytes(b64url(kdf["salt"]))
        contact = slot.get("contact")
        if contact is None:
            t.absent()
        else:
            t.bytes(contact["recipient"].encode())
            t.bytes(b64url(contact["request"]))
        t.bytes(b64url(slot["wrapped"]))
    return bytes(t.out)


def recovery_secret(text):
    """format.md, "Recovery key, format 2": base32 of secret || checksum, 58 characters."""
    clean = text.replace("-", "").upper().translate(str.maketrans("018", "OIB"))
    assert len(clean) == 58, len(clean)
    raw = base64.b32decode(clean + "=" * (-len(clean) % 8))
    assert base64.b32encode(raw).decode().rstrip("=") == clean, "unused bits are zero"
    secret, checksum = raw[:32], raw[32:]
    assert hashlib.sha256(b"veilfs recovery key v2" + secret).digest()[:4] == checksum
    return secret


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/format.md"
    with open(path, encoding="utf-8") as f:
        vectors, config_text = blocks(f.read())
    if config_text is None:
        print(f"{path}: no `json veilfs.conf v2` block", file=sys.stderr)
        return 1
    config = json.loads(config_text)
    master = bytes(range(64))
    vault_id = b64url(config["vault_id"])
    password = b"correct horse battery staple"

    def subkey(purpose, length):
        return hkdf(master, b"veilfs v2 " + purpose + vault_id, length)

    diriv_key = subkey(b"diriv key", 32)
    mac_key = subkey(b"config mac key", 32)
    computed = {
        "v2_master_key": master.hex(),
        "v2_vault_id": vault_id.hex(),
        "v2_name_key": subkey(b"name key", 64).hex(),
        "v2_content_key": subkey(b"content key", 32).hex(),
        "v2_diriv_key": diriv_key.hex(),
        "v2_record_key": subkey(b"record key", 64).hex(),
        "v2_config_mac_key": mac_key.hex(),
        "v2_root_iv": hmac.new(diriv_key, bytes(16), hashlib.sha256).digest()[:16].hex(),
        "v2_mac": hmac.new(mac_key, transcript(config), hashlib.sha256).digest().hex(),
        "v2_config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
    }
    # A contact slot with the password slot's id, kdf and salt, share a0..bf, the password as
    # the passphrase.
    password_slot = config["slots"][0]
    half = Argon2id(salt=b64url(password_slot["kdf"]["salt"]), length=32, iterations=1, lanes=1,
                    memory_cost=8, ad=None, secret=None).derive(password)
    share = bytes(range(0xA0, 0xC0))
    computed["v2_contact_wrap_key"] = hkdf(
        share + half, b"veilfs v2 contact slot" + vault_id + b64url(password_slot["id"]), 64).hex()
    # Rotating this config (generation 1 -> 2) to this master key from previous key c0..ff.
    rotation_key = subkey(b"rotation wrap key", 64)
    computed["v2_rotation_wrap_key"] = rotation_key.hex()
    computed["v2_rotation_from_master"] = AESSIV(rotation_key).encrypt(
        bytes(range(0xC0, 0x100)), [b"veilfs v2 rotation", vault_id, b"2", b"2"]).hex()
    secret = recovery_secret(vectors["v2_recovery_key"].strip('"'))
    computed["v2_recovery_secret"] = secret.hex()
    computed["v2_recovery_key"] = vectors["v2_recovery_key"]

    failures = []
    if b64url(config["mac"]).hex() != computed["v2_mac"]:
        failures.append("the config's mac is not the MAC of its transcript")
    for slot in config["slots"]:
        slot_id = b64url(slot["id"])
        if slot["kind"] == "password":
            kdf = slot["kdf"]
            wrap_key = Argon2id(
                salt=b64url(kdf["salt"]),
                length=64,
                iterations=kdf["iterations"],
                lanes=kdf["parallelism"],
                memory_cost=kdf["memory_kib"],
                ad=None,
                secret=None,
            ).derive(password)
        elif slot["kind"] == "recovery":
            wrap_key = hkdf(secret, b"veilfs v2 recovery slot" + vault_id + slot_id, 64)
        else:
            failures.append(f"unexpected slot kind {slot['kind']}")
            continue
        ad = [b"veilfs v2 slot", vault_id, slot_id, slot["kind"].encode(),
              str(config["generation"]).encode()]
        if AESSIV(wrap_key).decrypt(b64url(slot["wrapped"]), ad) != master:
            failures.append(f"slot {slot['label']!r} does not unwrap to the master key")
    if set(vectors) != set(computed):
        failures.append(f"vector names differ: {sorted(set(vectors) ^ set(computed))}")
    for name, value in sorted(computed.items()):
        if vectors.get(name) != value:
            failures.append(f"{name}: format.md says {vectors.get(name)}, recomputed {value}")
    for failure in failures:
        print(f"check_format_v2.py: {failure}", file=sys.stderr)
    if not failures:
        print(f"check_format_v2.py: {len(computed)} format 2 vectors, 2 slots and the MAC "
              f"of {path} recomputed independently: all match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
