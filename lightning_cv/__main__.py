"""``python -m lightning_cv`` runs the ``lightning-cv`` command."""

from lightning_cv.cli import main

main()
