"""``python -m batchgen`` runs the command line."""

from .cli import main

main()
