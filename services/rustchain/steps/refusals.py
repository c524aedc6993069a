"""RustChain's step types refused on purpose (process_start, process_kill), each with the reason."""

from __future__ import annotations

# A step's programs end with the step (steps/support/sandboxing.py), so a process can neither be
# left running nor found again by a later step; and no host pid is a mission's to kill. See
# docs/security.md, "Processes".
_OUTLIVES = (
    "a program a step starts runs in the OS sandbox, which ends every process it started when "
    "the step ends, so nothing a mission starts can outlive its step"
)
REFUSALS: dict[str, str] = {
    "process_start": (
        f"RustChain-Python refuses 'process_start' steps: {_OUTLIVES}; run the program with a "
        "'command' step (it waits for the program to finish), or run long-lived services "
        "outside the mission"
    ),
    "process_kill": (
        "RustChain-Python refuses 'process_kill' steps: a mission may only end processes it "
        f"started, and {_OUTLIVES}; no other process of the host is a mission's to kill"
    ),
}
