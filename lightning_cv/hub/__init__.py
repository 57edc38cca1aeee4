"""The zoo's low layer: manifest records (:mod:`~lightning_cv.hub.manifest`) and sha256-checked
checkpoint files, cached, bundled or downloaded from W&B or a URL
(:mod:`~lightning_cv.hub.files`).

It imports neither Lightning nor the task, so the model builder
(:func:`lightning_cv.models.create_model` with ``weights=``) loads zoo weights through it while
the zoo's apps (:mod:`lightning_cv.zoo`: ``load``, ``measure``, ``register``, ``export``) sit
above the task. The manifest and the bundled checkpoints ship in ``lightning_cv/zoo/``.
"""

__all__: list[str] = []  # the names live in the two modules; lightning_cv.zoo re-exports them
