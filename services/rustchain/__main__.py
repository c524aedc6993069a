"""`python -m rustchain` is the `rustchain` command."""

from rustchain.cli import main

main()
