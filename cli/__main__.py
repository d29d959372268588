"""`python -m mmagent.cli` runs the `mmagent` command."""

from mmagent.cli.app import main

main()
