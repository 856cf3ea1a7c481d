"""``python -m nanorepo`` runs the command line."""

from nanorepo.cli import main

main()
