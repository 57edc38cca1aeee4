"""The zoo's low layer: manifest records (:mod:`~lightning_cv.hub.manifest`), sha256-checked
checkpoint files, cached, bundled or downloaded (:mod:`~lightning_cv.hub.files`), the one
resolver of model sources, zoo names, files, URLs and W&B paths
(:mod:`~lightning_cv.hub.sources`), W&B access (:mod:`~lightning_cv.hub.wandb_api`) and
publishing to the W&B Registry (:mod:`~lightning_cv.hub.publish`).

It imports neither Lightning nor the task, so the model builder
(:func:`lightning_cv.models.create_model` with ``weights=``) loads zoo weights through it while
the zoo's apps (:mod:`lightning_cv.zoo`: ``load``, ``measure``, ``register``, ``export``) sit
above the task. The manifest and the bundled checkpoints ship in ``lightning_cv/zoo/``.
"""

__all__: list[str] = []  # the names live in the modules; lightning_cv.zoo re-exports them
