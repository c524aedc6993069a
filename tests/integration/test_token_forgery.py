"""A token signed with anything but the deployment's private key is refused: over gRPC and by the
NATS auth callout, whichever way it was forged (another Ed25519 key, HS256 with the public key as
secret, HS256 with an old shared key, `alg: none`, a genuine signature over other claims)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.credentials.signing_keys import TOKEN_KEYS, load_public_key
from rustchain.platform.credentials.tokens import issue
from rustchain.platform.nats.auth_callout import (
    authorize_connection,
    callout_secrets,
    serve_callout,
)
from rustchain.platform.nats.jetstream import (
    NatsCredentials,
    NatsPermissionError,
    NatsUnavailableError,
    connect,
)
from rustchain.platform.nats.jwt import decode_unverified, encode, new_account_seed
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from tests.integration.grpc_helpers import running_services
from tests.keys import forgeries, home_keys

ADMIN = Claims(sub="evil", role=Role.ADMIN)
BETA = Claims(sub="beta-ci", role=Role.TENANT, tenant="beta")
LEGACY = "HS256 with an old shared key"


def _meta(token: str) -> tuple[tuple[str, str], ...]:
    return (("x-rustchain-tenant", "alpha"), ("authorization", f"Bearer {token}"))


def test_every_forged_admin_token_is_refused_over_grpc(tmp_path: Path) -> None:
    key = home_keys(tmp_path)
    forged = forgeries(tmp_path, ADMIN, issue(key, BETA))
    genuine = issue(key, Claims(sub="root", role=Role.ADMIN))

    async def scenario() -> dict[str, tuple[grpc.StatusCode, str]]:
        outcomes: dict[str, tuple[grpc.StatusCode, str]] = {}
        async with running_services(tmp_path, ("memory",)) as services:
            memory = memory_pb2_grpc.MemoryServiceStub(services.channel("memory"))
            for name, token in {**forged, "genuine": genuine}.items():
                try:
                    await memory.List(memory_pb2.ListRequest(collection="c"), metadata=_meta(token))
                except grpc.aio.AioRpcError as refused:
                    outcomes[name] = (refused.code(), refused.details() or "")
                else:
                    outcomes[name] = (grpc.StatusCode.OK, "")
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes.pop("genuine")[0] is grpc.StatusCode.OK
    assert set(outcomes) == set(forged)
    for name, (code, _) in outcomes.items():
        assert code is grpc.StatusCode.UNAUTHENTICATED, name
    assert "tokens must be reissued" in outcomes[LEGACY][1]


def _request(token: str) -> str:
    claims = {
        "nats": {
            "user_nkey": "UNEWUSER",
            "server_id": {"id": "NSERVER"},
            "connect_opts": {"auth_token": token},
        }
    }
    return encode(claims, new_account_seed())


def test_the_callout_answers_every_forgery_with_a_refusal(tmp_path: Path) -> None:
    key = home_keys(tmp_path)
    public = load_public_key(tmp_path, TOKEN_KEYS)
    assert public is not None
    seed = new_account_seed()
    for name, token in forgeries(tmp_path, ADMIN, issue(key, BETA)).items():
        answer = decode_unverified(authorize_connection(_request(token), seed, public, now=1000))
        assert "jwt" not in answer["nats"], name
        assert answer["nats"]["error"], name
        if name == LEGACY:
            assert "tokens must be reissued" in answer["nats"]["error"]


@pytest.fixture
def callout_nats(tmp_path: Path) -> Iterator[NatsServer]:
    callout = callout_secrets(tmp_path, create=True)
    server = NatsServer(NatsServerSettings(store_dir=tmp_path / "nats", callout=callout))
    server.start()
    yield server
    server.stop()


def test_a_nats_server_behind_the_callout_admits_no_forged_token(
    tmp_path: Path, callout_nats: NatsServer
) -> None:
    key = home_keys(tmp_path)
    public = load_public_key(tmp_path, TOKEN_KEYS)
    callout = callout_secrets(tmp_path)
    assert public is not None and callout is not None
    forged = forgeries(tmp_path, ADMIN, issue(key, BETA))
    genuine = issue(key, Claims(sub="root", role=Role.ADMIN))

    async def scenario() -> dict[str, bool]:
        admitted: dict[str, bool] = {}
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve_callout(callout_nats.url, callout, public, stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), timeout=30)
            for name, token in {**forged, "genuine": genuine}.items():
                try:
                    client = await connect(
                        callout_nats.url, credentials=NatsCredentials.of_token(token)
                    )
                except (NatsPermissionError, NatsUnavailableError):
                    admitted[name] = False
                else:
                    admitted[name] = True
                    await client.close()
        finally:
            stop.set()
            await task
        return admitted

    admitted = asyncio.run(scenario())
    assert admitted.pop("genuine") is True
    assert admitted == dict.fromkeys(forged, False)
