--[[
  Lease: moves up to N ready jobs to ACTIVE, high priority first, FIFO within a level.
  Counts the attempt and issues a fresh lease token for each job.

  Transition: QUEUED -> ACTIVE
  Trigger: a Lease stream with free credit

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] active zset         <prefix>:{<queue>}:active   (member ulid, score lease deadline ms)
  KEYS[5] job records hash    <prefix>:{<queue>}:jobs
  KEYS[6] wire bytes hash     <prefix>:{<queue>}:wire
  KEYS[7] errors hash         <prefix>:{<queue>}:errors

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] most jobs to lease
  ARGV[3] lease ms for jobs that carry no lease length of their own
  ARGV[4] token base (random, unique per call); each token is base .. "." .. index
  ARGV[5] worker id

  Returns a flat array: the lease's start ms (now), then 8 entries per job: ulid, lease
  deadline ms, wire, attempts (this lease's), due_ms, create_ms, last_error, errors (the JSON
  history). Job number n (from 1) has the token ARGV[4] .. "." .. n.
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local wanted, default_lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local token_base, worker = ARGV[4], ARGV[5]

local popped = {}
for level = 1, 3 do
  if #popped >= wanted then break end
  local ulids = rcall('RPOP', KEYS[level], wanted - #popped)
  if ulids then
    for _, ulid in ipairs(ulids) do popped[#popped + 1] = ulid end
  end
end
if #popped == 0 then return {now} end

-- One HMGET per hash for the whole call: records and wires of every job, errors of the jobs
-- that have some (their records say so).
local texts, stored = hmget_all(KEYS[5], popped), hmget_all(KEYS[6], popped)
local ulids, records, wires, failed = {}, {}, {}, {}
for i, ulid in ipairs(popped) do
  local r = parse_record(texts[i])
  if r then  -- a ulid without a record (never written by the scripts) is dropped
    ulids[#ulids + 1] = ulid
    records[#ulids] = r
    wires[#ulids] = stored[i] or ''
    if r[HAS_ERRORS] == '1' then failed[#failed + 1] = ulid end
  end
end
local errors = {}
for i, value in ipairs(hmget_all(KEYS[7], failed)) do errors[failed[i]] = value end

local out, writes, deadlines = {now}, {}, {}
for n, ulid in ipairs(ulids) do
  local r = records[n]
  local lease = tonumber(r[LEASE_MS]) or 0
  if lease <= 0 then lease = default_lease end
  local deadline = now + lease
  local attempts = (tonumber(r[ATTEMPTS]) or 0) + 1
  r[STATE], r[ATTEMPTS], r[START_MS], r[LEASE_EXPIRE_MS] = 'active', attempts, now, deadline
  r[TOKEN], r[WORKER] = token_base .. '.' .. n, worker
  writes[#writes + 1] = ulid
  writes[#writes + 1] = format_record(r)
  deadlines[#deadlines + 1] = deadline
  deadlines[#deadlines + 1] = ulid
  local history, last_error = split_errors(errors[ulid])
  out[#out + 1] = ulid
  out[#out + 1] = deadline
  out[#out + 1] = wires[n]
  out[#out + 1] = attempts
  out[#out + 1] = r[DUE_MS]
  out[#out + 1] = r[CREATE_MS]
  out[#out + 1] = last_error
  out[#out + 1] = history
end
call_all('HSET', KEYS[5], writes)
call_all('ZADD', KEYS[4], deadlines)
return out
