"""A pretrained model behind HTTP, built on LitServe: ``POST /predict`` with dynamic batching
across requests, ``GET /health``, ``GET /info`` and the web page at ``/``.

The model is a :class:`~lightning_cv.zoo.Pretrained`: one forward pass per dynamic batch.
"""

from __future__ import annotations

import socket
from typing import Any

import litserve as ls
from starlette.responses import JSONResponse

from lightning_cv.errors import ConfigError
from lightning_cv.serve.gate import PredictGate
from lightning_cv.serve.page import PageRoute
from lightning_cv.serve.queries import Query, Refusal, read_query
from lightning_cv.zoo import Pretrained, load

__all__ = ["ClassifierAPI", "answer", "build_server", "check_port_free"]


def _predict_batch(
    pretrained: Pretrained, images: list[Any], top_k: int, tta: bool
) -> list[list[tuple[str, float]]]:
    """``top_k`` (class, probability) pairs per image, in one forward pass over ``images``."""
    return pretrained.predict(list(images), top_k, tta=tta)


def answer(pretrained: Pretrained, queries: list[Query | Refusal]) -> list[dict | Refusal]:
    """One response per query: its images in one forward pass with the others of the same
    ``tta`` (a dynamic batch), each cut to its ``top_k``; a Refusal stays a Refusal."""
    answers: list[dict | Refusal] = list(queries)
    for tta in (False, True):
        group = [
            i for i, query in enumerate(queries) if isinstance(query, Query) and query.tta == tta
        ]
        if not group:
            continue
        images = [image for i in group for image in queries[i].images]
        try:
            ranked = _predict_batch(pretrained, images, len(pretrained.class_names), tta)
        except ConfigError as error:  # tta asked of a model without it
            for i in group:
                answers[i] = Refusal(400, str(error))
            continue
        for i in group:
            count = len(queries[i].images)
            answers[i], ranked = _response(ranked[:count], queries[i]), ranked[count:]
    return answers


def _response(ranked: list[list[tuple[str, float]]], query: Query) -> dict[str, Any]:
    results = [
        {"predictions": [{"class": name, "probability": p} for name, p in pairs[: query.top_k]]}
        for pairs in ranked
    ]
    return {"results": results} if query.batch else results[0]


class ClassifierAPI(ls.LitAPI):
    """LitServe's view of the model: each worker loads ``source`` once; a request is read by
    :func:`~lightning_cv.serve.queries.read_query`, a batch of them answered by :func:`answer`.

    A bad request is answered from ``encode_response``, not raised: LitServe fails every
    request of a batch when one raises.
    """

    def __init__(
        self, source: str, *, tta: bool, max_images: int, max_batch_size: int, batch_timeout: float
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.source, self.tta, self.max_images = source, tta, max_images

    def setup(self, device: str) -> None:
        self.pretrained = load(self.source)

    # no annotations on request and the response: LitServe reads them as FastAPI types
    def decode_request(self, request) -> Query | Refusal:
        return read_query(request, max_images=self.max_images, tta=self.tta)

    def batch(self, inputs: list[Query | Refusal]) -> list[Query | Refusal]:
        return list(inputs)

    def predict(self, x: Any) -> Any:
        return (
            answer(self.pretrained, x) if isinstance(x, list) else answer(self.pretrained, [x])[0]
        )

    def unbatch(self, output: list[dict | Refusal]) -> list[dict | Refusal]:
        return output

    def encode_response(self, output: dict | Refusal):
        if isinstance(output, Refusal):
            return JSONResponse({"detail": output.message}, status_code=output.status)
        return output


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when ``port`` cannot be bound on ``host`` (another server holds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"cannot listen on {host} port {port}: {error.strerror}; pass another --port"
            ) from None


def build_server(
    source: str, *, tta: bool = False, max_images: int = 64, max_batch_size: int = 16,
    batch_timeout: float = 0.005, workers: int = 1, max_request_mb: float = 20.0,
) -> tuple[ls.LitServer, Pretrained]:  # fmt: skip
    """The LitServer of ``source`` (a zoo name or checkpoint), loaded once here to check it and
    describe it at ``/info``, then once in each of ``workers`` processes.

    Raises:
        ConfigError: an unknown source, or ``tta`` for a model without test-time augmentation.
    """
    pretrained = load(source)
    if tta and pretrained.preprocessing.tta is None:
        raise ConfigError(
            f"{source} has no test-time augmentation: its recipe lists no "
            "TestTimeAugmentation callback; serve without --tta"
        )
    api = ClassifierAPI(source, tta=tta, max_images=max_images, max_batch_size=max_batch_size,
                        batch_timeout=batch_timeout)  # fmt: skip
    gate = (PredictGate, {"max_bytes": int(max_request_mb * 2**20)})
    server = ls.LitServer(
        api, accelerator="cpu", workers_per_device=workers, model_metadata=pretrained.info(),
        middlewares=[PageRoute, gate],
    )  # fmt: skip
    return server, pretrained
