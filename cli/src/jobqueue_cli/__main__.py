"""`python -m jobqueue_cli`: the same as the `jobq` command."""

from jobqueue_cli import main

main()
