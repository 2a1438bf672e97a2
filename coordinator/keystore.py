"""The secrets keystore (``packetbeat keystore``), in Beats' file format.

A Beats keystore file (libbeat ``keystore/file_keystore.go``) is ``v1``
followed by base64 of ``salt (64 bytes) || iv (12 bytes) || AES-256-GCM
ciphertext``; the key is PBKDF2-HMAC-SHA512 of the password (empty: the
values are obfuscated, not protected by a secret) over the salt, 10000
iterations; the plaintext is JSON ``{"KEY": {"value": "<base64>"}}``. So a
keystore written by Packetbeat 8 reads here and the other way round. The file
lives at ``keystore.path`` (default ``<path.data>/packetbeat.keystore``) with
mode 0600; every write replaces it atomically.

``${KEY}`` in the configuration resolves from the keystore before the
environment (shared/config.py).
"""
from __future__ import annotations

import base64
import json
import os
import re
import stat

VERSION = b"v1"
SALT_LEN = 64
IV_LEN = 12
ITERATIONS = 10000
KEY_LEN = 32
FILE_MODE = 0o600
FILE_NAME = "packetbeat.keystore"
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


class KeystoreError(Exception):
    """The keystore is missing, unreadable, corrupt or the key is invalid."""


def keystore_path(paths: dict, section=None) -> str:
    """``keystore.path``, else ``<path.data>/packetbeat.keystore``."""
    p = (section or {}).get("path") if isinstance(section, dict) else None
    if p:
        return os.path.abspath(os.path.join(paths.get("home") or os.getcwd(), str(p)))
    return os.path.join(paths["data"], FILE_NAME)


def _key(password: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    return PBKDF2HMAC(algorithm=hashes.SHA512(), length=KEY_LEN, salt=salt, iterations=ITERATIONS).derive(password)


def encrypt(plain: bytes, password: bytes = b"") -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    salt, iv = os.urandom(SALT_LEN), os.urandom(IV_LEN)
    sealed = AESGCM(_key(password, salt)).encrypt(iv, plain, None)
    return VERSION + base64.b64encode(salt + iv + sealed)


def decrypt(data: bytes, password: bytes = b"") -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    if not data.startswith(VERSION):
        raise KeystoreError("not a keystore file (version %r, expected %r)" % (data[:2], VERSION))
    try:
        raw = base64.b64decode(data[len(VERSION):].strip(), validate=True)
    except ValueError as e:
        raise KeystoreError("corrupt keystore (%s)" % e) from None
    if len(raw) < SALT_LEN + IV_LEN + 16:
        raise KeystoreError("corrupt keystore (%d bytes)" % len(raw))
    salt, iv, sealed = raw[:SALT_LEN], raw[SALT_LEN:SALT_LEN + IV_LEN], raw[SALT_LEN + IV_LEN:]
    try:
        return AESGCM(_key(password, salt)).decrypt(iv, sealed, None)
    except InvalidTag:
        raise KeystoreError("the keystore cannot be decrypted (corrupt, or another password)") from None


def check_perms(path: str) -> None:
    """Beats' strict.perms for the keystore: owned by this user or root, no access
    for group or others (KeystoreError saying how to fix it)."""
    st = os.stat(path)
    uid = os.geteuid()
    if st.st_uid not in (uid, 0):
        raise KeystoreError("the keystore %s must be owned by the user identifier (uid=%d) or root "
                            "(or run with --strict.perms=false)" % (path, uid))
    if st.st_mode & 0o077:
        raise KeystoreError("the keystore %s must be accessible by its owner only, its permissions are %s "
                            "(chmod 600 %s, or run with --strict.perms=false)"
                            % (path, stat.filemode(st.st_mode), path))


def check_key(key: str) -> None:
    if not _KEY.match(key or ""):
        raise KeystoreError("invalid key %r: use letters, digits, '_', '.' and '-'" % key)


class Keystore:
    """One keystore file; ``load()`` -> {key: bytes}; ``save(values)`` writes it (0600)."""

    def __init__(self, path: str):
        self.path = path

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def load(self) -> dict[str, bytes]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise KeystoreError("the keystore %s does not exist; create it with 'packetbeat keystore create'"
                                % self.path) from None
        except OSError as e:
            raise KeystoreError("cannot read the keystore %s: %s" % (self.path, e.strerror)) from None
        try:
            doc = json.loads(decrypt(data))
            return {str(k): base64.b64decode(v["value"]) for k, v in doc.items()}
        except KeystoreError as e:
            raise KeystoreError("%s: %s" % (self.path, e)) from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise KeystoreError("%s: corrupt keystore content (%s)" % (self.path, e)) from None

    def load_values(self) -> dict[str, str]:
        """The values as text, for ``${KEY}``; {} when there is no keystore."""
        if not self.exists():
            return {}
        return {k: v.decode("utf-8", "replace") for k, v in self.load().items()}

    def save(self, values: dict[str, bytes]) -> None:
        doc = {k: {"value": base64.b64encode(v).decode("ascii")} for k, v in sorted(values.items())}
        data = encrypt(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
        d = os.path.dirname(self.path) or "."
        try:
            os.makedirs(d, 0o750, exist_ok=True)
            tmp = self.path + ".new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), FILE_MODE)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            raise KeystoreError("cannot write the keystore %s: %s" % (self.path, e.strerror or e)) from None

    def mode(self) -> int:
        return stat.S_IMODE(os.stat(self.path).st_mode)


# --- the command ---------------------------------------------------------------

USAGE = """usage: packetbeat keystore create [--force]
       packetbeat keystore add KEY [--stdin] [--force]
       packetbeat keystore list
       packetbeat keystore remove KEY...
"""


def command(rest: list[str], path: str, force: bool, use_stdin: bool, stdin=None, out=None, err=None) -> int:
    """``packetbeat keystore ...``; the exit code (messages on ``out`` / ``err``)."""
    import sys
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    err = err or sys.stderr
    ks = Keystore(path)
    sub = rest[0] if rest else ""
    try:
        if sub == "create" and len(rest) == 1:
            if ks.exists() and not force:
                err.write("Exiting: a keystore already exists at %s (use --force to overwrite it)\n" % path)
                return 1
            ks.save({})
            out.write("Created packetbeat keystore %s\n" % path)
            return 0
        if sub == "add" and len(rest) == 2:
            key = rest[1]
            check_key(key)
            values = ks.load() if ks.exists() else {}
            if key in values and not force:
                err.write("Exiting: the key %s already exists in the keystore (use --force to replace it)\n" % key)
                return 1
            if use_stdin:
                value = stdin.read()
                if value.endswith("\n"):
                    value = value[:-1]
                    if value.endswith("\r"):
                        value = value[:-1]
            else:
                import getpass
                if not stdin.isatty():
                    err.write("Exiting: no terminal to type the value on: use --stdin\n")
                    return 1
                value = getpass.getpass("Enter value for %s: " % key)
            if not value:
                err.write("Exiting: the value of %s is empty\n" % key)
                return 1
            if not ks.exists():
                out.write("Created packetbeat keystore %s\n" % path)
            values[key] = value.encode("utf-8")
            ks.save(values)
            out.write("Successfully updated the keystore (%s)\n" % key)
            return 0
        if sub == "list" and len(rest) == 1:
            for key in sorted(ks.load()):
                out.write(key + "\n")
            return 0
        if sub == "remove" and len(rest) >= 2:
            values = ks.load()
            missing = [k for k in rest[1:] if k not in values]
            if missing:
                err.write("Exiting: not in the keystore: %s\n" % ", ".join(missing))
                return 1
            for k in rest[1:]:
                del values[k]
            ks.save(values)
            out.write("Removed from the keystore: %s\n" % ", ".join(rest[1:]))
            return 0
    except KeystoreError as e:
        err.write("Exiting: %s\n" % e)
        return 1
    err.write(USAGE)
    return 1
