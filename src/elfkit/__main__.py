"""`python -m elfkit` runs the command line."""

from elfkit.cli import main

main()
