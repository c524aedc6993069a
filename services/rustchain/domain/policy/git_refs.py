"""Which texts a git step may hand git as a branch name: git's own rules for ref names
(`git check-ref-format --branch`), and never one that git would read as an option.

A branch such as `--upload-pack=evil` is an argument injection; the verifier proves a branch
parameter never takes such a value, and the runner refuses it again after substitution.
"""

from __future__ import annotations

from rustchain.domain.policy.languages import Rule
from rustchain.domain.policy.regex import ANYTHING, chars, concat, literal, union

# Control characters, space, DEL and the characters git forbids anywhere in a ref name.
_FORBIDDEN = chars([(0, 0x20), (0x7F, 0x7F)])
_SPECIAL = union(*(literal(c) for c in "~^:?*[\\"))

INVALID_BRANCH = union(
    literal(""),
    literal("@"),
    concat(literal("-"), ANYTHING),  # read as an option: argument injection
    concat(ANYTHING, union(_FORBIDDEN, _SPECIAL), ANYTHING),
    concat(ANYTHING, literal(".."), ANYTHING),
    concat(ANYTHING, literal("@{"), ANYTHING),
    concat(ANYTHING, literal("//"), ANYTHING),
    concat(ANYTHING, literal("/."), ANYTHING),
    concat(literal("."), ANYTHING),
    concat(literal("/"), ANYTHING),
    concat(ANYTHING, literal("/")),
    concat(ANYTHING, literal(".")),
    concat(ANYTHING, literal(".lock")),
    concat(ANYTHING, literal(".lock/"), ANYTHING),
)
"""The texts git refuses as a branch name, or would take for an option."""

GIT_BRANCH_RULE = Rule(
    "git.branch",
    INVALID_BRANCH,
    "is not a valid git branch name (it may start with '-', which git reads as an option, "
    "or hold characters git refuses)",
)


def branch_problem(name: str) -> str | None:
    """Why a concrete text cannot be a branch name, or None."""
    if INVALID_BRANCH.matches(name):
        return (
            f"{name!r} is not a valid git branch name: no leading '-', '.', or '/', no spaces, "
            "control characters, '..', '@{', '~^:?*[\\', no trailing '/', '.' or '.lock'"
        )
    return None
