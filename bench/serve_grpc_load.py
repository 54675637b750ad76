"""gRPC load for the serving benchmark (bench/serve.ts): tritonclient's asyncio gRPC client, CONC
requests in flight for SECONDS after a one-second warm-up, one row per request. Prints
{ "requests", "seconds", "rps", "p50_ms", "p99_ms", "errors" }.

  python serve_grpc_load.py HOST:PORT MODEL CONCURRENCY SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import numpy as np
import tritonclient.grpc.aio as tga
from tritonclient.grpc import InferInput


async def main(url: str, model: str, concurrency: int, seconds: float) -> dict[str, object]:
    client = tga.InferenceServerClient(url)
    x = np.random.RandomState(0).rand(1, 64).astype(np.float32) * 16
    latencies: list[float] = []
    errors: list[str] = []
    measuring = False

    async def one(stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            i = InferInput("input", [1, 64], "FP32")
            i.set_data_from_numpy(x)
            t = time.perf_counter()
            try:
                await client.infer(model, [i])
                if measuring:
                    latencies.append(time.perf_counter() - t)
            except Exception as e:  # counted, and the loop goes on
                if measuring:
                    errors.append(str(e)[:200])

    await asyncio.gather(*(one(time.perf_counter() + 1.0) for _ in range(concurrency)))
    measuring = True
    started = time.perf_counter()
    await asyncio.gather(*(one(started + seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors[:5],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))))
