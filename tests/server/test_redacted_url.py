"""The start line names the Redis URL without its password, wherever the URL carries one."""

from __future__ import annotations

import pytest

from jobqueue_server.runtime.serve import redacted_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@db:6379/0", "redis://:***@db:6379/0"),
        ("rediss://app:s3cret@db:6380/1", "rediss://app:***@db:6380/1"),
        # redis-py reads a password from the query as well (issue 12: it was printed as given).
        ("redis://db:6379/0?password=s3cret", "redis://db:6379/0?password=***"),
        (
            "redis://db/0?socket_timeout=3&PASSWORD=s3cret&db=1",
            "redis://db/0?socket_timeout=3&password=***&db=1",
        ),
        ("unix:///run/valkey.sock?password=s3cret", "unix:///run/valkey.sock?password=***"),
        ("redis://db:6379/0", "redis://db:6379/0"),
    ],
)
def test_the_password_is_replaced_and_the_rest_kept(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
    assert "s3cret" not in redacted_url(url)
