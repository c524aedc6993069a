"""The `toolchains` policy section: which language toolchains a tenant's code steps may run.

compile_code, run_tests, format_code and lint_code run a toolchain's programs (cargo, go, npm,
python) on the workspace, in the sandbox, without network. None is granted by default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Toolchain = Literal["rust", "go", "node", "python"]


class ToolchainPolicy(BaseModel):
    """The toolchains granted (deny unless listed)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
    allowed: list[Toolchain] = Field(default_factory=list)
