"""The cluster and Sentinel URLs: every address, the credentials and the service name are read,
and a URL that names them wrongly is refused with what is wrong."""

from __future__ import annotations

import pytest

from jobqueue_server.store.cluster import startup_nodes
from jobqueue_server.store.sentinel import parse


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    assert startup_nodes("redis+cluster://app:s%40cret@10.0.0.1:7000,[::1]:7001") == (
        [("10.0.0.1", 7000), ("::1", 7001)],
        "app",
        "s@cret",
    )


def test_a_sentinel_url_names_its_sentinels_and_service() -> None:
    assert parse("redis+sentinel://h1:26379,h2:26380/jobqueue") == (
        [("h1", 26379), ("h2", 26380)],
        "jobqueue",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://", "name 1 to 64 nodes"),
        ("redis+cluster://h1", "'h1' is not host:port"),
        ("redis+cluster://h1:70000", "is not host:port"),
        ("redis+cluster://" + ",".join(f"h:{p}" for p in range(1, 66)), "name 1 to 64 nodes"),
        ("redis+sentinel://h1:26379", "name the service"),
        ("redis+sentinel:///jobqueue", "name 1 to 16 sentinels"),
    ],
)
def test_a_url_that_names_its_addresses_wrongly_is_refused(url: str, problem: str) -> None:
    read = parse if url.startswith("redis+sentinel") else startup_nodes
    with pytest.raises(ValueError, match=problem):
        read(url)
