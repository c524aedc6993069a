"""The deployment's Ed25519 key pairs, and where each process finds the half it may hold.

Three pairs: `token-signing` signs every credential (held by `rustchain token create` and the
process that issues the deployment's own tokens); `verdict-signing` signs the verifier's verdicts
(held by the verifier); `checkpoint-signing` signs the checkpoints of the stores' tenant logs
(held by the processes that write or relay a store: they must never hold the token key, which
would let them mint credentials). Every other process gets public keys only. For a pair named by
`variable` (RUSTCHAIN_TOKEN, RUSTCHAIN_VERDICT, RUSTCHAIN_CHECKPOINT) a process reads, first
found wins:

- the private key: `<variable>_SIGNING_KEY` (PEM text), `<variable>_SIGNING_KEY_FILE`, and only
  where the caller may hold it, `$RUSTCHAIN_HOME/keys/<name>.pem`;
- the public key: `<variable>_PUBLIC_KEY` (PEM text), `<variable>_PUBLIC_KEY_FILE`,
  `$RUSTCHAIN_HOME/keys/<name>.pub.pem`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rustchain.platform.storage.private_files import private_folder, write_private

KEYS_FOLDER = "keys"
LEGACY_KEY_FILE = "jwt.key"
"""The shared HS256 key of earlier versions: never read, only recognised to say so."""
LEGACY_KEY_VARIABLE = "RUSTCHAIN_JWT_KEY"


class SigningKeyError(RuntimeError):
    """A key that is named but cannot be read as an Ed25519 key; the message says where."""


@dataclass(frozen=True)
class KeyPair:
    """One of the deployment's key pairs: its file name and the variables that name its halves."""

    name: str
    variable: str

    @property
    def private_variable(self) -> str:
        """The variable holding the private key's PEM text."""
        return f"{self.variable}_SIGNING_KEY"

    @property
    def public_variable(self) -> str:
        """The variable holding the public key's PEM text."""
        return f"{self.variable}_PUBLIC_KEY"

    def private_path(self, home: Path) -> Path:
        """Where the home keeps the private key."""
        return home / KEYS_FOLDER / f"{self.name}.pem"

    def public_path(self, home: Path) -> Path:
        """Where the home keeps the public key."""
        return home / KEYS_FOLDER / f"{self.name}.pub.pem"


TOKEN_KEYS = KeyPair("token-signing", "RUSTCHAIN_TOKEN")
VERDICT_KEYS = KeyPair("verdict-signing", "RUSTCHAIN_VERDICT")
CHECKPOINT_KEYS = KeyPair("checkpoint-signing", "RUSTCHAIN_CHECKPOINT")


def private_pem(key: Ed25519PrivateKey) -> str:
    """The private key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM text."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def parse_private_key(text: str, where: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM text, or SigningKeyError naming `where` it came from."""
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{where} is not a PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where} is not an Ed25519 private key")
    return key


def parse_public_key(text: str, where: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text, or SigningKeyError naming `where` it came from."""
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{where} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{where} is not an Ed25519 public key")
    return key


def _named_text(variable: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The text a variable or its `_FILE` twin names, with where it came from."""
    if environ.get(variable):
        return environ[variable], variable
    file = environ.get(f"{variable}_FILE")
    if file:
        try:
            return Path(file).read_text(), f"{variable}_FILE ({file})"
        except OSError as error:
            raise SigningKeyError(f"{variable}_FILE names {file}: {error.strerror}") from None
    return None


def load_private_key(
    home: Path, pair: KeyPair, environ: Mapping[str, str] | None = None, from_home: bool = True
) -> Ed25519PrivateKey | None:
    """The pair's private key from the environment, else (when `from_home`) the home, or None."""
    env = os.environ if environ is None else environ
    named = _named_text(pair.private_variable, env)
    if named is not None:
        return parse_private_key(*named)
    path = pair.private_path(home)
    if from_home and path.is_file():
        return parse_private_key(path.read_text(), str(path))
    return None


def load_public_key(
    home: Path, pair: KeyPair, environ: Mapping[str, str] | None = None
) -> Ed25519PublicKey | None:
    """The pair's public key from the environment, else the home, or None."""
    env = os.environ if environ is None else environ
    named = _named_text(pair.public_variable, env)
    if named is not None:
        return parse_public_key(*named)
    path = pair.public_path(home)
    return parse_public_key(path.read_text(), str(path)) if path.is_file() else None


def ensure_key_pair(home: Path, pair: KeyPair) -> tuple[Ed25519PrivateKey, bool]:
    """The pair's private key in the home, made (0600, in a 0700 folder) when there is none;
    True when it was made now. The public file is rewritten whenever it does not match."""
    private_folder(home / KEYS_FOLDER)
    path = pair.private_path(home)
    created = not path.is_file()
    if created:
        key = Ed25519PrivateKey.generate()
        write_private(path, private_pem(key))
    else:
        key = parse_private_key(path.read_text(), str(path))
    public = public_pem(key.public_key())
    public_path = pair.public_path(home)
    if not public_path.is_file() or public_path.read_text() != public:
        write_private(public_path, public)
    return key, created


def legacy_key_present(home: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the home or environment still holds the shared HS256 key of earlier versions."""
    env = os.environ if environ is None else environ
    return bool(env.get(LEGACY_KEY_VARIABLE)) or (home / LEGACY_KEY_FILE).is_file()


def token_public_key(
    home: Path, environ: Mapping[str, str] | None = None
) -> Ed25519PublicKey | None:
    """The key every credential is verified with; None when the deployment has none (no auth).

    A home that still has only the old HS256 key is an error, never a deployment without auth.
    """
    key = load_public_key(home, TOKEN_KEYS, environ)
    if key is None and legacy_key_present(home, environ):
        raise SigningKeyError(
            f"{home} has the shared HS256 key of an earlier version ({LEGACY_KEY_FILE} or"
            f" {LEGACY_KEY_VARIABLE}) and no Ed25519 key: start `rustchain up` once (it makes the"
            f" key pair and reissues admin.token) or set {TOKEN_KEYS.public_variable}"
        )
    return key
