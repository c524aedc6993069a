"""Who may do what: the claims of a credential and the one rule that authorises a call.

Roles: a `tenant` token runs and reads its own tenant's missions; an `auditor` token only reads,
and only the tenants it names; an `admin` token may do anything.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rustchain.domain.events.names import validate_tenant


class Role(StrEnum):
    """What a credential holder is."""

    TENANT = "tenant"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Access(StrEnum):
    """What a call does."""

    READ = "read"
    WRITE = "write"


class CredentialError(ValueError):
    """A credential that is missing, forged, expired or malformed (UNAUTHENTICATED)."""


class PermissionDeniedError(PermissionError):
    """A valid credential that may not do this (PERMISSION_DENIED); says nothing of the data."""


class Claims(BaseModel):
    """The verified content of a token."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    sub: str = Field(min_length=1)
    role: Role
    tenant: str | None = None
    tenants: list[str] = Field(default_factory=list)
    exp: int | None = None

    @model_validator(mode="after")
    def _scoped(self) -> Claims:
        if self.role is Role.TENANT and self.tenant is None:
            raise ValueError("a tenant token names its tenant")
        for name in [*([self.tenant] if self.tenant else []), *self.tenants]:
            validate_tenant(name)
        return self


def authorize(claims: Claims, tenant: str, access: Access) -> None:
    """Allow the call, or raise PermissionDeniedError without saying what exists."""
    if claims.role is Role.ADMIN:
        return
    if claims.role is Role.TENANT and claims.tenant == tenant:
        return
    if claims.role is Role.AUDITOR and access is Access.READ and tenant in claims.tenants:
        return
    raise PermissionDeniedError(f"this credential may not {access.value} tenant '{tenant}'")
