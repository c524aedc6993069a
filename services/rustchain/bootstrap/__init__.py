"""The composition root: builds stores, policy source, memory, quotas, clients and applications
from settings, and is the only place that does (as cosmicpython's `bootstrap`).

Import the module needed; this package imports nothing, so a verb loads only what it uses.
- `services.HOSTS[service]`: what `rustchain serve SERVICE` hosts (and so `rustchain up`).
- `local.open_local_deployment`: the planner, verifier and executor applications in this
  process, with in-process clients in place of gRPC (`rustchain run` without a deployment).
- `executor.open_executor`: the executor application on the home's store (`status`,
  `missions`, `cancel` without a deployment).
- `executor.build_executor`: the executor application on a given store; tests pass doubles.
- `stores.open_store`: a service's event store, as the settings name it.
"""
