"""`python -m aisle.cli` runs the CLI."""

from aisle.cli import main

main()
