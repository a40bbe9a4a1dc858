-- The prelude: scripts.py puts it into every script, right after its header (it has no header
-- and is no script of its own). It holds what the scripts share: the clock, calls with long
-- argument lists, and the job record.
--
-- A queue's jobs live in per-queue hashes keyed by ulid (docs/state-machine.md): `jobs` holds
-- each job's record, one string of 15 fields separated by '|', in the order below; an unset
-- field is empty. No field holds a '|': they are numbers, state names, tokens, a backoff policy,
-- and the worker id, which is escaped ('%' as %25, '|' as %7C). layout.py reads the same
-- positions (tests/store/test_prelude.py holds the two together). The fields the hot paths
-- change come first, so lease and ack match only the head of a record (LEASE_VIEW, ACK_VIEW).
local STATE, TOKEN, WORKER, LEASE_EXPIRE_MS, START_MS, FINISH_MS, ATTEMPTS, HAS_ERRORS, DUE_MS,
  READY_MS, CREATE_MS, PRIORITY, LEASE_MS, MAX_ATTEMPTS, BACKOFF = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
-- The command a script sends a queue's wake-up with (store/signals.py): PUBLISH, or on a
-- cluster SPUBLISH, which only the shard of the channel's slot carries (scripts.py sets it).
local WAKE = 'PUBLISH'
local RECORD_PATTERN = '^' .. string.rep('([^|]*)|', BACKOFF - 1) .. '([^|]*)$'

-- A record as a table of its fields' texts, by position; false when there is no record.
local function parse_record(text)
  if not text then return false end
  return {string.match(text, RECORD_PATTERN)}
end

-- The record's text (numbers are written as integers: every one is whole).
local function format_record(r)
  return table.concat(r, '|', 1, BACKOFF)
end

-- What lease-13.lua reads of a queued job: finish_ms, attempts, the record from has_errors on,
-- has_errors, due_ms, create_ms, lease_ms (matching no more of the record than it needs:
-- Lua's matcher costs about 0.1 µs a field).
local LEASE_VIEW = '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|([^|]*)|(([^|]*)|([^|]*)|[^|]*|([^|]*)|[^|]*|([^|]*)|.*)$'

-- The record of a job leased with `token` until `deadline` at `now`, from the parts LEASE_VIEW
-- read (texts all, so no number is formatted per job).
local function leased_record(token, worker, deadline, now, finish, attempts, rest)
  return 'active|' .. token .. '|' .. worker .. '|' .. deadline .. '|' .. now .. '|' .. finish .. '|' .. attempts
    .. '|' .. rest
end

-- What ack-7.lua reads of a leased job: state, token, start_ms and the record from attempts on.
local ACK_VIEW = '^([^|]*)|([^|]*)|[^|]*|[^|]*|([^|]*)|[^|]*|(.*)$'

local function completed_record(start, now, rest)
  return 'completed||||' .. start .. '|' .. now .. '|' .. rest
end

-- A worker id as a record holds it.
local function escape_worker(worker)
  return (string.gsub(worker, '[%%|]', {['%'] = '%25', ['|'] = '%7C'}))
end

-- The script's clock, as a number and as text: ARGV[1] when the caller drives time (tests),
-- else Redis's TIME.
local function now_ms(arg)
  local now = tonumber(arg)
  if not now then
    local t = redis.call('TIME')
    now = t[1] * 1000 + math.floor(t[2] / 1000)
  end
  return now, tostring(now)
end

-- unpack is bounded by Lua's C stack (LUAI_MAXCSTACK, 8000): long argument lists go in slices
-- of SLICE (even, so field-value and score-member pairs are never split).
local SLICE = 4000

-- One command on `key` with every item of `args` (HSET, HDEL, ZADD, ZREM, LPUSH...): one call
-- per batch, more only past SLICE arguments, none for no arguments. Returns the last reply (for
-- a push: the list's length after it), or false when there was nothing to send.
local function call_all(command, key, args)
  local reply = false
  for i = 1, #args, SLICE do
    reply = redis.call(command, key, unpack(args, i, math.min(i + SLICE - 1, #args)))
  end
  return reply
end

-- HMGET of every field of `fields` (one call per batch): the values in order, false for none.
local function hmget_all(key, fields)
  if #fields <= SLICE then
    if #fields == 0 then return {} end
    return redis.call('HMGET', key, unpack(fields))
  end
  local values = {}
  for i = 1, #fields, SLICE do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + SLICE - 1, #fields)))
    for j = 1, #part do values[#values + 1] = part[j] end
  end
  return values
end

-- A job's error history and latest error, kept in the `errors` hash as one value: the JSON
-- history (cjson never writes a raw newline), a newline, then the latest message.
local function split_errors(value)
  if not value then return '', '' end
  local newline = string.find(value, '\n', 1, true)
  return string.sub(value, 1, newline - 1), string.sub(value, newline + 1)
end

-- The history with one more entry, keeping the `keep` newest, as the `errors` value.
local function errors_with(value, attempt, message, now, keep)
  local history = split_errors(value)
  local errors = cjson.decode(history ~= '' and history or '[]')
  errors[#errors + 1] = {attempt = attempt, message = message, time_ms = now}
  while #errors > keep do table.remove(errors, 1) end
  return cjson.encode(errors) .. '\n' .. message
end

-- The records of a batch of jobs, read with one HMGET of the `jobs` hash at `key`.
-- batch.get(i): job i's record as this call has left it so far (a table, or false when there is
-- none), so a job named twice in one batch sees the change made for its first mention;
-- batch.save(ulid): marks that job's record changed; batch.write(): one HSET of the changes.
local function batch_records(key, ulids)
  local texts, current, changed = hmget_all(key, ulids), {}, {}
  local batch = {}
  function batch.get(i)
    local r = current[ulids[i]]
    if r == nil then
      r = parse_record(texts[i])
      current[ulids[i]] = r
    end
    return r
  end
  function batch.save(ulid)
    if not changed[ulid] then
      changed[ulid] = true
      changed[#changed + 1] = ulid
    end
  end
  function batch.write()
    local writes = {}
    for _, ulid in ipairs(changed) do
      writes[#writes + 1] = ulid
      writes[#writes + 1] = format_record(current[ulid])
    end
    call_all('HSET', key, writes)
  end
  return batch
end

-- The `errors` values (at `key`) of the jobs of `batch` whose records say they have some, read
-- with one HMGET. history.add(ulid, r, message, now, keep): appends an entry for the attempt of
-- record r and sets r's flag (the caller saves r); history.write(): one HSET of the new values.
local function batch_errors(key, batch, ulids)
  local wanted, values, changed = {}, {}, {}
  for i, ulid in ipairs(ulids) do
    local r = batch.get(i)
    if r and r[HAS_ERRORS] == '1' and values[ulid] == nil then
      values[ulid] = false
      wanted[#wanted + 1] = ulid
    end
  end
  for i, value in ipairs(hmget_all(key, wanted)) do values[wanted[i]] = value end
  local history = {}
  function history.add(ulid, r, message, now, keep)
    values[ulid] = errors_with(values[ulid], tonumber(r[ATTEMPTS]), message, now, keep)
    r[HAS_ERRORS] = '1'
    if not changed[ulid] then
      changed[ulid] = true
      changed[#changed + 1] = ulid
    end
  end
  function history.write()
    local writes = {}
    for _, ulid in ipairs(changed) do
      writes[#writes + 1] = ulid
      writes[#writes + 1] = values[ulid]
    end
    call_all('HSET', key, writes)
  end
  return history
end

-- Dependencies (docs/dependencies.md): a queue's `dependents` set holds the ulids of its jobs
-- that WAITING jobs wait on. When such a job ends, its "<ulid>|<state>" goes into the queue's
-- `settled` set and the queue's name onto `<prefix>:deps`, where every server's resolver
-- (store/dependencies.py) tells the waiting jobs. `ended` holds ulid, state pairs, flat. The
-- keys are named after `dependents_key` (the same hash tag, so the same slot).
local function end_dependents(dependents_key, ended)
  if #ended == 0 or redis.call('EXISTS', dependents_key) == 0 then return end
  local prefix, queue = string.match(dependents_key, '^(.*):{([^{}]*)}:dependents$')
  local marks = {}
  for i = 1, #ended, 2 do
    if redis.call('SISMEMBER', dependents_key, ended[i]) == 1 then
      marks[#marks + 1] = ended[i] .. '|' .. ended[i + 1]
    end
  end
  if #marks > 0 then
    call_all('SADD', prefix .. ':{' .. queue .. '}:settled', marks)
    redis.call('PUBLISH', prefix .. ':deps', queue)
  end
end

-- Groups (EnqueueRequest.group_key; docs/flow-control.md, "Groups"). A grouped job's ready
-- entry is in its group's sorted set `gready:<group>` (score: group_rank), not in the ready
-- lists. The queue's `groups` sorted set is the ring of groups with ready jobs that no limit
-- holds, by turn (`gturn` counts the turns given); `gblocked` holds the others, until a time in
-- ms (their rate) or +inf (their max_active: until one of their jobs ends); `gactive` counts
-- each group's active jobs, `gbucket` holds each group's tokens ("tokens|ms"), `gqueued` counts
-- the ready grouped jobs, and `group_of` maps the ulid of each grouped job to its group. All
-- are named after `group_of`, so they share its hash tag (its slot).
local function group_keys(group_of_key)
  local base = string.sub(group_of_key, 1, -9)  -- '<prefix>:{<queue>}:' without 'group_of'
  return {ready = base .. 'gready:', ring = base .. 'groups', blocked = base .. 'gblocked',
    active = base .. 'gactive', bucket = base .. 'gbucket', queued = base .. 'gqueued',
    turn = base .. 'gturn'}
end

-- High before normal before low, then oldest first; a job taken back from a lost lease goes
-- before every job of its level (as it goes to the front of a ready list).
local function group_rank(priority, ready_ms, first)
  return (3 - priority) * 4e12 + (first and 0 or ready_ms)
end

-- Makes a job ready in its group, and gives the group a turn in the ring when it had no ready
-- job and no limit holds it.
local function push_grouped(g, group, ulid, priority, ready_ms, first)
  local key = g.ready .. group
  if redis.call('ZADD', key, group_rank(priority, ready_ms, first), ulid) == 1 then
    redis.call('INCR', g.queued)
  end
  if redis.call('ZCARD', key) == 1 and not redis.call('ZSCORE', g.blocked, group) then
    redis.call('ZADD', g.ring, 'NX', redis.call('INCR', g.turn), group)
  end
end

-- Takes a ready job out of its group (a cancel, a start deadline); false when it was not there.
local function remove_grouped(g, group, ulid)
  if redis.call('ZREM', g.ready .. group, ulid) == 0 then return false end
  redis.call('DECR', g.queued)
  return true
end

-- The groups of `ulids` (false for ungrouped jobs), or false when the queue has none.
local function groups_of(group_of_key, ulids)
  if #ulids == 0 or redis.call('EXISTS', group_of_key) == 0 then return false end
  return hmget_all(group_of_key, ulids)
end

-- A grouped job is no longer active: its group has room again. A group its max_active held
-- gets its turn back; returns true then (the caller wakes the queue's streams).
local function free_group_slot(g, group)
  if redis.call('HINCRBY', g.active, group, -1) <= 0 then redis.call('HDEL', g.active, group) end
  local held = redis.call('ZSCORE', g.blocked, group)
  if held == 'inf' then  -- how Redis writes +inf
    redis.call('ZREM', g.blocked, group)
    if redis.call('ZCARD', g.ready .. group) > 0 then
      redis.call('ZADD', g.ring, 'NX', redis.call('INCR', g.turn), group)
      return true
    end
  end
  return false
end

-- free_group_slot for each grouped job among `ulids`; true when a group got its turn back.
local function free_group_slots(group_of_key, ulids)
  local groups = groups_of(group_of_key, ulids)
  if not groups then return false end
  local g, woke = group_keys(group_of_key), false
  for i = 1, #ulids do
    if groups[i] and free_group_slot(g, groups[i]) then woke = true end
  end
  return woke
end
