"""A real Mosquitto with the shipped secure configuration and files made by our commands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from broker_identity import DEVICES, BrokerFiles, make_files
from secure_broker import SecureBroker, start_secure_broker


@pytest.fixture(scope="session")
def broker_files(tmp_path_factory: pytest.TempPathFactory) -> BrokerFiles:
    return make_files(tmp_path_factory.mktemp("broker-files"), DEVICES)


@pytest.fixture(scope="session")
def secure_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_files: BrokerFiles
) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path_factory.mktemp("secure-broker"), broker_files.dir)
    yield broker
    broker.stop()
