"""Files only their owner can read: keys, tokens and stores under `$RUSTCHAIN_HOME`.

Secrets are created 0600 before a byte is written (never readable by others, even for an
instant), their folders 0700; `tighten_home` brings an older home's files to these modes.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
SECRET_NAMES = ("admin.token", "jwt.key", "nats-auth.json", "endpoints.json")
"""Files directly under a home that hold a secret (or say where to knock with one)."""
STORE_SUFFIXES = (
    ".sqlite",
    ".sqlite3",
    ".sqlite-wal",
    ".sqlite-shm",
    ".sqlite3-wal",
    ".sqlite3-shm",
)
PRIVATE_FOLDERS = ("keys", "logs")


def private_folder(path: Path) -> Path:
    """The folder, created if missing, readable by its owner only."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    path.chmod(PRIVATE_FOLDER)
    return path


def private_file(path: Path) -> Path:
    """The file, created empty if missing, readable by its owner only (a store opens it next)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(descriptor)
    path.chmod(PRIVATE_FILE)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace the file's content with `text`, the file readable by its owner only."""
    if not path.parent.exists():
        private_folder(path.parent)
    private_file(path)
    path.write_text(text)


def _is_private(path: Path) -> bool:
    return path.name in SECRET_NAMES or path.name.endswith(STORE_SUFFIXES)


def tighten_home(home: Path) -> list[Path]:
    """Make the home, its key and log folders 0700 and its secrets and stores 0600; returns what
    had been open to others (to report it)."""
    changed: list[Path] = []

    def tighten(path: Path, mode: int) -> None:
        if path.stat().st_mode & 0o777 != mode:
            if path.stat().st_mode & 0o077:
                changed.append(path)
            path.chmod(mode)

    if not home.is_dir():
        return changed
    tighten(home, PRIVATE_FOLDER)
    for name in PRIVATE_FOLDERS:
        folder = home / name
        if folder.is_dir():
            tighten(folder, PRIVATE_FOLDER)
            for inside in folder.iterdir():
                if inside.is_file() and not inside.is_symlink():
                    tighten(inside, PRIVATE_FILE)
    for path in home.iterdir():
        if path.is_file() and not path.is_symlink() and _is_private(path):
            tighten(path, PRIVATE_FILE)
    return changed
