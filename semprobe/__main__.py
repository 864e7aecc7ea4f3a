"""``python -m semprobe`` runs the command line, like the ``semprobe`` console script."""

from semprobe.cli import main

main()
