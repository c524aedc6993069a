"""Where a deployment keeps its state: `$RUSTCHAIN_HOME`, by default `./.rustchain`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME_VARIABLE = "RUSTCHAIN_HOME"
DEFAULT_HOME = ".rustchain"


def rustchain_home(environ: Mapping[str, str] | None = None) -> Path:
    """The state directory named by `$RUSTCHAIN_HOME` (created 0700 if missing), absolute."""
    env = os.environ if environ is None else environ
    home = Path(env.get(HOME_VARIABLE) or DEFAULT_HOME).expanduser().absolute()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home
