"""When the driver warns, or refuses, that the run's secrets would reach the executors in clear."""

from __future__ import annotations

import pytest

from sparkring.driver.rpc_encryption import check_rpc_encryption
from sparkring.failures import JobError


class FakeDriver:
    def __init__(self, master: str, **conf: str) -> None:
        self.master = master
        self._conf = {k.replace("_", "."): v for k, v in conf.items()}

    def conf(self, key: str, default: str) -> str:
        return self._conf.get(key, default)


def test_a_local_master_keeps_the_closures_on_this_machine() -> None:
    assert check_rpc_encryption(FakeDriver("local-cluster[2,1,1024]")) is None  # type: ignore[arg-type]
    assert check_rpc_encryption(FakeDriver("local[*]", spark_sparkring_requireEncryption="true")) is None  # type: ignore[arg-type]


def test_a_cluster_without_rpc_encryption_is_named_with_the_settings_that_fix_it() -> None:
    line = check_rpc_encryption(FakeDriver("yarn", spark_authenticate="true"))  # type: ignore[arg-type]
    assert line is not None
    assert "yarn is not encrypted" in line and "spark.network.crypto.enabled=true" in line and "--require-encryption" in line


def test_encrypted_rpc_needs_both_settings() -> None:
    on = FakeDriver("spark://m:7077", spark_authenticate="true", spark_network_crypto_enabled="true")
    assert check_rpc_encryption(on) is None  # type: ignore[arg-type]


def test_a_run_that_requires_encryption_is_refused_with_its_code() -> None:
    with pytest.raises(JobError) as caught:
        check_rpc_encryption(FakeDriver("spark://m:7077", spark_sparkring_requireEncryption="TRUE"))  # type: ignore[arg-type]
    assert caught.value.code == "SR_INSECURE_RPC"
