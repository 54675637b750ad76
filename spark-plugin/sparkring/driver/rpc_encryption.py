"""Whether the run's secrets reach the executors in clear. The run secret and the Redis password
ride inside the barrier stage's task closure, over Spark's RPC, which is plain TCP unless
`spark.network.crypto.enabled` (with `spark.authenticate`). On a local master the closure stays on
this machine's loopback; on any other it crosses the network, and the driver says so once, or
refuses with SR_INSECURE_RPC where `spark.sparkring.requireEncryption` is true (the CLI's
--require-encryption sets it; a cluster's spark-defaults.conf can too)."""

from __future__ import annotations

from typing import Optional

from sparkring.error_codes import INSECURE_RPC
from sparkring.failures import JobError
from sparkring.driver.spark_session import DriverSpark

REQUIRE_ENCRYPTION_CONF = "spark.sparkring.requireEncryption"


def _on(driver: DriverSpark, key: str) -> bool:
    return driver.conf(key, "false").strip().lower() == "true"


def _exposure(driver: DriverSpark) -> Optional[str]:
    """Why the run's task closures cross the network in clear, or None when they do not."""
    master = driver.master
    if master.startswith("local"):  # local, local[N], local-cluster[...]: executors on this machine's loopback
        return None
    if _on(driver, "spark.authenticate") and _on(driver, "spark.network.crypto.enabled"):
        return None
    return (
        f"Spark's RPC to the executors of {master} is not encrypted, so the run's secret and Redis password reach them "
        "in clear inside the task closure: set spark.authenticate=true and spark.network.crypto.enabled=true "
        "(YARN and Kubernetes make the key; a standalone cluster needs spark.authenticate.secret on every node)"
    )


def check_rpc_encryption(driver: DriverSpark) -> Optional[str]:
    """None when the secrets travel safely; the warning line otherwise. Raises JobError(SR_INSECURE_RPC)
    instead when the run requires encryption."""
    exposure = _exposure(driver)
    if exposure is None:
        return None
    if _on(driver, REQUIRE_ENCRYPTION_CONF):
        raise JobError(f"{exposure}; this run requires encryption ({REQUIRE_ENCRYPTION_CONF}=true, --require-encryption)", INSECURE_RPC)
    return f"{exposure}, or pass --require-encryption to refuse such runs"
