"""Against a deployment that checks tokens, a tenant's token is all a verb needs: the tenant comes
from it, and a --tenant naming another tenant is refused before any call."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rustchain.domain.access.credentials import Claims, Role
from rustchain.platform.credentials.tokens import issue
from rustchain.platform.deployment.endpoints import Endpoints, write_endpoints
from tests.e2e.test_run import rustchain
from tests.integration.grpc_helpers import services_in_thread
from tests.keys import home_keys

SERVICES = ("verifier", "memory", "executor", "planner")


def test_a_tenant_token_runs_and_lists_as_its_tenant_and_refuses_another(tmp_path: Path) -> None:
    key = home_keys(tmp_path)
    alpha = issue(key, Claims(sub="alpha-ci", role=Role.TENANT, tenant="alpha"))
    with services_in_thread(tmp_path, SERVICES) as endpoints:
        write_endpoints(tmp_path, Endpoints(endpoints, pid=os.getpid()))

        ran = rustchain(tmp_path, "--token", alpha, "run", "missions/hello.yaml", "--var", "who=A")
        listed = rustchain(tmp_path, "--token", alpha, "missions")
        refused = rustchain(tmp_path, "--token", alpha, "missions", "--tenant", "beta")

    assert ran.returncode == 0, ran.stderr
    [mission] = re.findall(r"\(([0-9a-f]{32})\), tenant alpha, on the deployment", ran.stdout)
    assert mission in listed.stdout, listed.stderr
    assert refused.returncode == 2
    assert refused.stderr == (
        "rustchain: --tenant beta is not the token's tenant (alpha): a tenant's token acts for"
        " its own tenant only; drop --tenant or use a token of beta\n"
    )
