"""lua/prelude.lua, which scripts.py puts into every script: the job record, the clock, calls
with long argument lists, error histories. Run here on the real Redis through small scripts."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from jobqueue_server.store.decode import errors_of
from jobqueue_server.store.layout import RECORD_FIELDS, record_fields, split_errors, unescape_worker
from jobqueue_server.store.scripts import headers, prelude

PRELUDE = prelude()


async def run(redis: Redis, body: str, keys: list[str], *args: Any) -> Any:
    return await redis.eval(f"{PRELUDE}\n{body}", len(keys), *keys, *args)


def test_the_record_fields_are_in_the_order_layout_reads_them() -> None:
    declared = re.search(r"local (?P<names>STATE,[^=]+)=(?P<numbers>[^\n]+)", PRELUDE)
    assert declared is not None
    names = [name.strip().lower() for name in declared["names"].split(",")]
    numbers = [int(n) for n in declared["numbers"].split(",")]

    assert tuple(names) == RECORD_FIELDS
    assert numbers == list(range(1, len(RECORD_FIELDS) + 1))


def test_every_script_is_loaded_with_the_prelude_after_its_header() -> None:
    for header, source in headers().values():
        assert source.startswith("--[[") and PRELUDE in source, header.file
        assert source.index(PRELUDE) > source.index("]]"), header.file


async def test_a_record_round_trips_and_a_worker_id_of_any_characters_is_escaped(redis: Redis) -> None:
    body = """
      local text = 'active|tok.1|' .. escape_worker(ARGV[1]) .. '|13|12||2|1|10|11|9|3|0|5|1,2,2.0,0.2'
      local r = parse_record(text)
      return {text, format_record(r), r[WORKER], r[TOKEN], r[BACKOFF], #r}
    """

    text, formatted, worker, token, backoff, count = await run(redis, body, [], "w|%7C|or\nk|%")

    assert (formatted, worker, token, backoff, count) == (
        text,
        b"w%7C%257C%7Cor\nk%7C%25",
        b"tok.1",
        b"1,2,2.0,0.2",
        15,
    )
    fields = record_fields(text)
    assert (unescape_worker(fields["worker"]), fields["attempts"]) == ("w|%7C|or\nk|%", b"2")


@pytest.mark.parametrize(
    "record",
    [
        "queued||||||0|0|10|11|9|3|0|5|1,2,2.0,0.2",
        "queued||||||2|1|10|11|9|1|7000|5|1,2,2.0,0.2",
        "queued|||||77|4|1|10|11|9|2|0|5|1,2,2.0,0.2",
    ],
)
async def test_the_lease_view_reads_and_rewrites_what_the_general_parse_does(
    redis: Redis, record: str
) -> None:
    body = """
      local finish, attempts, rest, has_errors, due, create, lease = string.match(ARGV[1], LEASE_VIEW)
      local fast = leased_record('t.1', 'w', '99', '50', finish, tostring(tonumber(attempts) + 1), rest)
      local r = parse_record(ARGV[1])
      r[STATE], r[TOKEN], r[WORKER], r[LEASE_EXPIRE_MS], r[START_MS] = 'active', 't.1', 'w', '99', '50'
      r[ATTEMPTS] = tonumber(r[ATTEMPTS]) + 1
      return {fast, format_record(r), has_errors, due, create, lease}
    """

    fast, general, has_errors, due, create, lease = await run(redis, body, [], record)

    fields = record_fields(record.encode())
    assert fast == general
    assert (has_errors, due, create, lease) == tuple(
        fields[name] for name in ("has_errors", "due_ms", "create_ms", "lease_ms")
    )


async def test_the_ack_view_reads_and_rewrites_what_the_general_parse_does(redis: Redis) -> None:
    record = "active|t.1|w%7C1|99|50||2|1|10|11|9|3|0|5|1,2,2.0,0.2"
    body = """
      local state, token, start, rest = string.match(ARGV[1], ACK_VIEW)
      local fast = completed_record(start, '70', rest)
      local r = parse_record(ARGV[1])
      r[STATE], r[TOKEN], r[WORKER], r[LEASE_EXPIRE_MS], r[FINISH_MS] = 'completed', '', '', '', '70'
      return {fast, format_record(r), state, token}
    """

    fast, general, state, token = await run(redis, body, [], record)

    assert (fast, state, token) == (general, b"active", b"t.1")


async def test_no_record_parses_as_false(redis: Redis) -> None:
    assert await run(redis, "return parse_record(false) == false and 1 or 0", []) == 1


async def test_the_clock_is_the_argument_or_redis_time(redis: Redis) -> None:
    assert await run(redis, "local now, text = now_ms(ARGV[1]) return {now, text}", [], "1234") == [
        1234,
        b"1234",
    ]
    before = int(time.time() * 1000)

    redis_now = await run(redis, "return now_ms(ARGV[1])", [], "")

    assert abs(redis_now - before) < 5_000  # the test Redis runs on this machine


async def test_long_argument_lists_go_in_slices_and_read_back_in_order(redis: Redis, key_prefix: str) -> None:
    body = """
      local pairs, fields = {}, {}
      for i = 1, 10001 do
        pairs[#pairs + 1] = 'f' .. i
        pairs[#pairs + 1] = 'v' .. i
        fields[#fields + 1] = 'f' .. i
      end
      fields[#fields + 1] = 'none'
      call_all('HSET', KEYS[1], pairs)
      local values = hmget_all(KEYS[1], fields)
      local nothing = call_all('HSET', KEYS[1], {})
      return {#values, values[1], values[10001], values[10002] == false and 1 or 0,
        redis.call('HLEN', KEYS[1]), nothing == false and 1 or 0, #hmget_all(KEYS[1], {})}
    """

    reply = await run(redis, body, [f"{key_prefix}:h"])

    assert reply == [10002, b"v1", b"v10001", 1, 10001, 1, 0]


async def test_an_error_history_keeps_the_newest_entries_and_the_latest_message(redis: Redis) -> None:
    body = """
      local value = false
      for attempt = 1, 3 do
        value = errors_with(value, attempt, 'failed|' .. attempt .. '\\nagain', 100 + attempt, 2)
      end
      local history, last = split_errors(value)
      local none_history, none_last = split_errors(false)
      return {value, history, last, none_history .. none_last}
    """

    value, history, last, empty = await run(redis, body, [])

    assert split_errors(value) == (history, last)
    assert [(e.attempt, e.message, e.time_ms) for e in errors_of(history)] == [
        (2, "failed|2\nagain", 102),
        (3, "failed|3\nagain", 103),
    ]
    assert (last, empty) == (b"failed|3\nagain", b"")


async def test_a_job_named_twice_in_a_batch_sees_its_first_change(redis: Redis, key_prefix: str) -> None:
    key = f"{key_prefix}:jobs"
    await redis.hset(key, "u", "queued||||||0|0|1|1|1|2|0|3|1,2,2.0,0.2")
    body = """
      local jobs = batch_records(KEYS[1], {'u', 'missing', 'u'})
      local first = jobs.get(1)
      first[STATE], first[ATTEMPTS] = 'active', 1
      jobs.save('u')
      local second = jobs.get(3)
      jobs.save('u')
      jobs.write()
      return {second[STATE], jobs.get(2) == false and 1 or 0}
    """

    assert await run(redis, body, [key]) == [b"active", 1]
    assert await redis.hgetall(key) == {b"u": b"active||||||1|0|1|1|1|2|0|3|1,2,2.0,0.2"}
