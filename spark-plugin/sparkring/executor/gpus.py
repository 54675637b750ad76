"""GPU addresses given by Spark to a task, turned into CUDA_VISIBLE_DEVICES for the Node worker."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence


def visible_devices(addresses: Sequence[str], inherited: Optional[str]) -> str:
    """The CUDA_VISIBLE_DEVICES value for a task given these Spark GPU addresses.

    When the executor already runs under a CUDA_VISIBLE_DEVICES (YARN or a container did the
    isolation), Spark's addresses are indices into that list, as TorchDistributor reads them.
    """
    if not addresses:
        return ""
    if inherited is None or inherited.strip() == "":
        return ",".join(addresses)
    visible = [d.strip() for d in inherited.split(",") if d.strip() != ""]
    out: list[str] = []
    for a in addresses:
        if not a.isdigit() or int(a) >= len(visible):
            raise ValueError(
                f"Spark gave GPU address {a!r}, but the executor only sees CUDA_VISIBLE_DEVICES={inherited!r}; "
                "check spark.executor.resource.gpu.discoveryScript"
            )
        out.append(visible[int(a)])
    return ",".join(out)


def gpu_addresses(resources: Mapping[str, object]) -> list[str]:
    """Addresses of the 'gpu' resource of a TaskContext.resources() mapping (empty when none)."""
    gpu = resources.get("gpu")
    if gpu is None:
        return []
    return [str(a) for a in getattr(gpu, "addresses")]
