"""Requests/s and latency of ``lightning-cv serve lenet5.mnist`` over localhost, with dynamic
batching (``--max_batch_size 16``) and without (``--max_batch_size 1``), beside calling
``Pretrained.predict`` in this process (the ceiling: no HTTP, no decoding of base64).

Both servers run at once (one model worker each, ``OMP_NUM_THREADS=1``) and take turns
(:func:`interleaved`). A round sends ``--requests`` JSON requests of one MNIST test image
(PNG, base64) from ``--clients`` threads. Printed per setting and round: requests/s, p50 and
p99 latency (ms), the client's wall seconds and the server's CPU seconds (all its processes);
then one JSON line per setting (medians over rounds, with min and max) and the result line,
whose ``ratio`` is batched requests/s over in-process predictions/s.

    .venv/bin/python benchmarks/serve.py --requests 200 --clients 8
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from _harness import DEFAULT_ROOT, interleaved, print_result, use_threads
from PIL import Image

SETTINGS = {"batched": ["--max_batch_size", "16"], "unbatched": ["--max_batch_size", "1"]}


def mnist_pngs(root: Path, count: int) -> list[bytes]:
    """The first ``count`` MNIST test images as PNG files' bytes."""
    with gzip.open(root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz") as file:
        pixels = np.frombuffer(file.read(16 + 784 * count)[16:], np.uint8).reshape(-1, 28, 28)
    return [png_of(image) for image in pixels]


def png_of(pixels: np.ndarray) -> bytes:
    """``(H, W)`` uint8 pixels as a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def start_server(options: list[str]) -> tuple[subprocess.Popen, str]:
    """``lightning-cv serve lenet5.mnist`` on a free port (not yet ready: see :func:`wait`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "lightning_cv", "serve", "lenet5.mnist", "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, *options], env=env, stdout=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def wait(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready within {timeout_s} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process below it (Linux /proc)."""
    parents, times = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grown = {pid}, True
    while grown:
        below = {child for child, parent in parents.items() if parent in tree} - tree
        tree, grown = tree | below, bool(below)
    return sum(times.get(p, 0.0) for p in tree)


def percentile_ms(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted seconds (nearest rank), in milliseconds."""
    return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def one_round(url: str, bodies: list[dict], clients: int) -> dict:
    def ask(body: dict) -> float:
        started = time.perf_counter()
        response = requests.post(f"{url}/predict", json=body, timeout=60)
        response.raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(ask, bodies))
    wall = time.perf_counter() - started
    p50, p99 = percentile_ms(latencies, 0.5), percentile_ms(latencies, 0.99)
    return {"requests_per_s": len(bodies) / wall, "wall_s": wall, "p50_ms": p50, "p99_ms": p99}


def in_process(pngs: list[bytes]) -> dict:
    """``Pretrained.predict`` on each image, one call at a time, in this process."""
    from lightning_cv.zoo import load

    pretrained = load("lenet5.mnist")
    images = [np.asarray(Image.open(io.BytesIO(png))) for png in pngs]
    pretrained.predict(images[0])  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    latencies = []
    for image in images:
        begin = time.perf_counter()
        pretrained.predict(image)
        latencies.append(time.perf_counter() - begin)
    wall, latencies = time.perf_counter() - started, sorted(latencies)
    return {"setting": "in_process", "predictions_per_s": len(images) / wall, "wall_s": wall,
            "cpu_s": time.process_time() - cpu, "p50_ms": percentile_ms(latencies, 0.5),
            "p99_ms": percentile_ms(latencies, 0.99)}  # fmt: skip


def summary(setting: str, rounds: list[dict]) -> dict:
    line = {"setting": setting, "rounds": len(rounds)}
    for key in ("requests_per_s", "p50_ms", "p99_ms", "wall_s", "server_cpu_s"):
        values = [r[key] for r in rounds]
        line[key] = round(statistics.median(values), 2)
        line[f"{key}_range"] = [round(min(values), 2), round(max(values), 2)]
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args()
    use_threads(args.threads)
    pngs = mnist_pngs(args.root, args.requests)
    bodies = [{"image": base64.b64encode(png).decode("ascii")} for png in pngs]
    servers = {name: start_server(options) for name, options in SETTINGS.items()}
    try:
        for _, url in servers.values():
            wait(url)
        rounds: dict[str, list[dict]] = {name: [] for name in servers}
        for repeat, name in interleaved(list(servers), args.repeats):
            process, url = servers[name]
            one_round(url, bodies[: args.clients * 2], args.clients)  # warm-up
            cpu = cpu_seconds(process.pid)
            figures = one_round(url, bodies, args.clients)
            figures["server_cpu_s"] = cpu_seconds(process.pid) - cpu
            rounds[name].append(figures)
            print(f"round {repeat} {name}: {json.dumps(figures)}", file=sys.stderr)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=60)
    lines = [summary(name, rounds[name]) for name in servers]
    ceiling = in_process(pngs)
    for line in [*lines, ceiling]:
        print(json.dumps({key: round(v, 2) if isinstance(v, float) else v
                          for key, v in line.items()}))  # fmt: skip
    batched = lines[0]["requests_per_s"]
    unbatched = lines[1]["requests_per_s"]
    print_result("serve", {"requests": args.requests, "clients": args.clients,
                           "ratio": round(batched / ceiling["predictions_per_s"], 3),
                           "batched_over_unbatched": round(batched / unbatched, 3)})  # fmt: skip


if __name__ == "__main__":
    main()
