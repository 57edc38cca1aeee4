"""``lightning-cv serve SOURCE``: run the HTTP server of a zoo model or checkpoint until Ctrl-C
(or SIGTERM), printing one line with its URL once it answers."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
import urllib.request
from argparse import ArgumentError
from typing import Literal

from jsonargparse import ArgumentParser

from lightning_cv.errors import check_range

__all__ = ["serve", "serve_main"]


def serve(
    source: str, *, host: Literal["127.0.0.1", "0.0.0.0", "::"] = "127.0.0.1", port: int = 8000,
    max_batch_size: int = 16, batch_timeout: float = 0.005, workers: int = 1, tta: bool = False,
    max_images: int = 64, max_request_mb: float = 20.0,
) -> None:  # fmt: skip
    """Serve a model over HTTP: POST /predict, GET /health, GET /info and a web page at /.

    Args:
        source: a zoo name (lenet5.mnist) or a checkpoint file of a lightning-cv fit run.
        host: the address to listen on; 0.0.0.0 or :: opens the server to other machines.
        port: the port to listen on (1024-65535).
        max_batch_size: the most requests answered in one forward pass (1: no batching).
        batch_timeout: seconds a worker waits to fill a batch.
        workers: model processes (each loads the model once).
        tta: average over the model's test-time augmentation unless a request says otherwise.
        max_images: the most images one request may send.
        max_request_mb: the largest request body, in MiB.
    """
    check_range("port", port, "[1024, 65535]")
    check_range("max_batch_size", max_batch_size, ">= 1")
    check_range("batch_timeout", batch_timeout, ">= 0")
    check_range("workers", workers, ">= 1")
    check_range("max_images", max_images, ">= 1")
    check_range("max_request_mb", max_request_mb, "> 0")
    from lightning_cv.serve.server import build_server, check_port_free  # imports LitServe

    check_port_free(host, port)
    server, pretrained = build_server(
        source, tta=tta, max_images=max_images, max_batch_size=max_batch_size,
        batch_timeout=batch_timeout, workers=workers, max_request_mb=max_request_mb,
    )  # fmt: skip
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    line = (
        f"lightning-cv serve: {pretrained.name} at {url} (POST /predict, GET /info); Ctrl-C stops"
    )
    threading.Thread(target=_announce, args=(url, line), daemon=True).start()
    stop = functools.partial(_stop, main_pid=os.getpid())
    for signum in (signal.SIGINT, signal.SIGTERM):  # a shell may have started us ignoring SIGINT
        signal.signal(signum, stop)
    server.run(host=host, port=port, log_level="error", generate_client_file=False)
    print("lightning-cv serve: stopped", flush=True)


def _stop(signum: int, frame: object, *, main_pid: int) -> None:
    """Ctrl-C or SIGTERM: LitServe stops its processes on a KeyboardInterrupt in the main one.
    A process it forked (the HTTP server) inherits this handler: there the signal's default
    action ends it, without the traceback of a KeyboardInterrupt."""
    if os.getpid() == main_pid:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _announce(url: str, line: str, poll_s: float = 0.1) -> None:
    """Print ``line`` once ``url``'s ``/health`` answers 200 (the workers have loaded)."""
    health = url.replace("[::]", "[::1]").replace("0.0.0.0", "127.0.0.1") + "health"
    while True:
        try:
            with urllib.request.urlopen(health, timeout=1) as response:
                if response.status == 200:
                    print(line, flush=True)
                    return
        except OSError:  # not listening yet, or 503 while the workers load
            pass
        time.sleep(poll_s)


def serve_main(args: list[str]) -> None:
    """Run ``lightning-cv serve ARGS`` (e.g. ``["lenet5.mnist", "--port", "8080"]``).

    Raises:
        ConfigError: a bad value or source, in one line.
        SystemExit: a usage error, printed as one line (2).
    """
    parser = ArgumentParser(prog="lightning-cv serve", description=serve.__doc__.splitlines()[0],
                            exit_on_error=False)  # fmt: skip
    parser.add_function_arguments(serve, as_positional=True)
    try:
        config = parser.parse_args(args)
    except ArgumentError as error:
        message = " ".join(str(error).split())
        print(
            f"lightning-cv serve: error: {message} (see lightning-cv serve --help)", file=sys.stderr
        )
        raise SystemExit(2) from None
    serve(**parser.instantiate(config))
