"""The recipes (LightningCLI YAML configs), installed as the package ``lightning_cv.recipes``.

``lightning-cv recipes`` lists them; ``lightning-cv fit --config NAME`` runs one by name.
"""
