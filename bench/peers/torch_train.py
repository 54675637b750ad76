"""bench peers' TorchDistributor row: PySpark's TorchDistributor with WORKERS processes on
local-cluster[WORKERS,1,1024], DistributedDataParallel over gloo, the same architecture (glorot-uniform
weights, zero biases), SGD, loss, data and BATCH rows per worker per step, one torch thread each.

    python bench/peers/torch_train.py MODEL EPOCHS BATCH LR DATA_DIR WORKERS
"""

from __future__ import annotations

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from dataclasses import asdict  # noqa: E402

from common import Workload, local_cluster, report, workload  # noqa: E402


def train(fields: dict, here: str) -> dict | None:
    # The workload comes as a dict: the executors' Python unpickles it before `here` is on its path.
    import sys

    sys.path.insert(0, here)
    import numpy as np
    import torch
    import torch.distributed as dist
    from common import Workload, load_arrays, now_ms
    from torch import nn

    w = Workload(**fields)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(1)
    if w.model == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=w.lr)
    loss_fn = nn.CrossEntropyLoss()
    x, y = load_arrays(w)
    if w.model == "cnn":
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    xs, ys = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
    times: dict = {"first_step_at": None, "epochs": []}
    for epoch in range(w.epochs):
        # DistributedSampler's deal: one permutation per epoch, every world-th index to this rank.
        order = torch.randperm(len(ys), generator=torch.Generator().manual_seed(epoch))[rank::world]
        correct = torch.zeros(2)
        for start in range(0, len(order), w.batch):
            idx = order[start : start + w.batch]
            out = ddp(xs[idx])
            loss = loss_fn(out, ys[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += torch.tensor([(out.argmax(1) == ys[idx]).sum().item(), len(idx)])
            if times["first_step_at"] is None:
                times["first_step_at"] = now_ms()
        dist.all_reduce(correct)
        times["epochs"].append({"at": now_ms(), "acc": float(correct[0] / correct[1])})
    if rank == 0:
        torch.save(model.state_dict(), os.path.join(w.data, f"torch-{os.getpid()}.pt"))
        times["saved_at"] = now_ms()
    dist.destroy_process_group()
    return times if rank == 0 else None


if __name__ == "__main__":
    w = workload()
    from pyspark.ml.torch.distributor import TorchDistributor

    spark = local_cluster(w.workers, {"OMP_NUM_THREADS": "1"})
    result = TorchDistributor(num_processes=w.workers, local_mode=False, use_gpu=False).run(train, asdict(w), here)
    report(result)
    spark.stop()
