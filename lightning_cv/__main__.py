"""``python -m lightning_cv`` runs the ``lightning-cv`` command."""

from lightning_cv._main import main

main()
