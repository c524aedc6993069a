"""Each tenant's secrets, one file per name: `<root>/<tenant>/<NAME>` holds the value.

The layout is a Kubernetes Secret volume's (one file per key), so the same code reads a Secret
mounted at `<root>/<tenant>`; there the files are symlinks into a hidden `..data` folder, which
are followed, and the hidden entries are not names. The root is RUSTCHAIN_SECRETS_DIR, else
`$RUSTCHAIN_HOME/secrets`; folders are 0700 and files 0600, and no sandbox is given the root.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rustchain.domain.events.names import validate_tenant
from rustchain.domain.language.secret_refs import valid_secret_name
from rustchain.platform.storage.home import DEFAULT_HOME, HOME_VARIABLE
from rustchain.platform.storage.private_files import PRIVATE_FILE, private_folder

SECRETS_DIR_VARIABLE = "RUSTCHAIN_SECRETS_DIR"


class SecretNameError(ValueError):
    """A secret name that is not a letter or '_' then letters, digits or '_'."""


def _check_name(name: str) -> str:
    if not valid_secret_name(name):
        raise SecretNameError(
            f"invalid secret name '{name}': a letter or '_', then letters, digits or '_'"
        )
    return name


class FileSecretStore:
    """The secrets of every tenant, in a folder of one folder per tenant."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, home: Path | None = None
    ) -> FileSecretStore:
        """The store RUSTCHAIN_SECRETS_DIR names, else the one under the home (given, else
        `$RUSTCHAIN_HOME`)."""
        env = os.environ if environ is None else environ
        named = env.get(SECRETS_DIR_VARIABLE)
        if named:
            return cls(Path(named).expanduser().absolute())
        # The home's path without creating it: reading an absent store finds no secret.
        if home is None:
            home = Path(env.get(HOME_VARIABLE) or DEFAULT_HOME).expanduser().absolute()
        return cls(home / "secrets")

    def _path(self, tenant: str, name: str) -> Path:
        return self.root / validate_tenant(tenant) / _check_name(name)

    def get(self, tenant: str, name: str) -> str | None:
        """The value of the tenant's secret, or None when it has none of that name."""
        path = self._path(tenant, name)
        try:
            return path.read_bytes().decode("utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def set(self, tenant: str, name: str, value: str) -> None:
        """Store the value (replacing any): written to a private file, then renamed into place."""
        path = self._path(tenant, name)
        private_folder(self.root)
        folder = private_folder(path.parent)
        # mkstemp creates the file 0600: the value is never readable by others, even briefly.
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(value.encode("utf-8"))
            os.chmod(temporary, PRIVATE_FILE)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def names(self, tenant: str) -> list[str]:
        """The names of the tenant's secrets, sorted (never their values)."""
        folder = self.root / validate_tenant(tenant)
        if not folder.is_dir():
            return []
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if valid_secret_name(entry.name) and entry.is_file()
        )

    def delete(self, tenant: str, name: str) -> bool:
        """Remove the secret; False when the tenant had none of that name."""
        path = self._path(tenant, name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
