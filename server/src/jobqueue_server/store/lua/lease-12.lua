--[[
  Lease: moves up to N ready jobs to ACTIVE, high priority first, FIFO within a level.
  Counts the attempt and issues a fresh lease token for each job. A job with a timeout gets
  a lease that ends by then; a leased job's start deadline no longer applies (expire-8.lua
  cancels the jobs not leased by theirs). A queue with limits (SetQueueLimits) leases no more
  than its rate's token bucket and its room under max_active allow.

  Transition: QUEUED -> ACTIVE
  Trigger: a Lease stream with free credit

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] active zset         <prefix>:{<queue>}:active   (member ulid, score lease deadline ms)
  KEYS[5] job records hash    <prefix>:{<queue>}:jobs
  KEYS[6] wire bytes hash     <prefix>:{<queue>}:wire
  KEYS[7] errors hash         <prefix>:{<queue>}:errors
  KEYS[8] paused flag         <prefix>:{<queue>}:paused   (set by PauseQueue: nothing is leased)
  KEYS[9] time limits hash    <prefix>:{<queue>}:deadlines (ulid -> timeout ms|start deadline ms)
  KEYS[10] start deadlines    <prefix>:{<queue>}:expiring
  KEYS[11] limits hash        <prefix>:{<queue>}:limits   (rate, burst, max_active)
  KEYS[12] token bucket hash  <prefix>:{<queue>}:bucket   (tokens, at: ms of the last lease)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] most jobs to lease
  ARGV[3] lease ms for jobs that carry no lease length of their own
  ARGV[4] token base (random, unique per call); each token is base .. "." .. index
  ARGV[5] worker id

  Returns a flat array: the lease's start ms (now); when a limit held ready jobs back, when
  to lease again (ms; 0: once an active job ends) else -1; then 8 entries per job: ulid,
  lease deadline ms, wire, attempts (this lease's), due_ms, create_ms, last_error, errors
  (the JSON history). Job number n (from 1) has the token ARGV[4] .. "." .. n.
]]
local rcall = redis.call
local now, now_text = now_ms(ARGV[1])
local wanted, default_lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local token_base, worker = ARGV[4] .. '.', escape_worker(ARGV[5])

if rcall('EXISTS', KEYS[8]) == 1 then return {now, -1} end

-- The limits: `wanted` shrinks to what they allow; `held` says which one held jobs back.
local held, bucket, rate = false, false, 0
if rcall('EXISTS', KEYS[11]) == 1 then
  local limits = rcall('HMGET', KEYS[11], 'rate', 'burst', 'max_active')
  local burst, max_active = tonumber(limits[2]) or 0, tonumber(limits[3]) or 0
  rate = tonumber(limits[1]) or 0
  if max_active > 0 then
    local room = math.max(0, max_active - rcall('ZCARD', KEYS[4]))
    if room < wanted then wanted, held = room, 'active' end
  end
  if rate > 0 then
    if burst <= 0 then burst = math.max(1, rate) end
    local state = rcall('HMGET', KEYS[12], 'tokens', 'at')
    local tokens, at = tonumber(state[1]), tonumber(state[2])
    if not tokens then tokens, at = burst, now end
    bucket = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
    if math.floor(bucket) < wanted then wanted, held = math.floor(bucket), 'rate' end
  end
end

local ulids = {}
for level = 1, 3 do
  if #ulids >= wanted then break end
  local popped = rcall('RPOP', KEYS[level], wanted - #ulids)
  if popped then
    for _, ulid in ipairs(popped) do ulids[#ulids + 1] = ulid end
  end
end
-- When to lease again, if a limit held back jobs that are ready.
local function retry_at(leased)
  if not held or rcall('EXISTS', KEYS[1], KEYS[2], KEYS[3]) == 0 then return -1 end
  if held == 'active' then return 0 end
  return now + math.ceil((1 - (bucket - leased)) * 1000 / rate)
end
if bucket then
  rcall('HSET', KEYS[12], 'tokens', tostring(bucket - #ulids), 'at', now_text)
end
if #ulids == 0 then return {now, retry_at(0)} end

-- One HMGET per hash for the whole call: the records and wires of every job, then the errors
-- of the jobs whose records say they have some. Time limits only when some job has one.
local texts, wires = hmget_all(KEYS[5], ulids), hmget_all(KEYS[6], ulids)
local limits = false
if rcall('EXISTS', KEYS[9]) == 1 then limits = hmget_all(KEYS[9], ulids) end
local out, writes, deadlines, failed, n = {now, -1}, {}, {}, {}, 0
-- Deadline texts by lease length, and attempt counts as texts: most jobs of a call share them.
local deadline_texts, counts = {}, {}
for i, ulid in ipairs(ulids) do
  local finish, attempts, rest, has_errors, due, create, lease = string.match(texts[i] or '', LEASE_VIEW)
  local timeout = limits and limits[i] and tonumber(string.match(limits[i], '^(%d*)|'))
  if finish then  -- a ulid without a record (never written by the scripts) is dropped
    n = n + 1
    lease = tonumber(lease) or 0
    if lease <= 0 then lease = default_lease end
    if timeout and timeout < lease then lease = timeout end  -- the attempt ends by its timeout
    local deadline = deadline_texts[lease]
    if not deadline then
      deadline = tostring(now + lease)
      deadline_texts[lease] = deadline
    end
    attempts = (tonumber(attempts) or 0) + 1
    local count = counts[attempts]
    if not count then
      count = tostring(attempts)
      counts[attempts] = count
    end
    writes[#writes + 1] = ulid
    writes[#writes + 1] = leased_record(token_base .. n, worker, deadline, now_text, finish, count, rest)
    deadlines[#deadlines + 1] = deadline
    deadlines[#deadlines + 1] = ulid
    if has_errors == '1' then failed[#failed + 1] = #out + 1 end
    out[#out + 1] = ulid
    out[#out + 1] = now + lease
    out[#out + 1] = wires[i] or ''
    out[#out + 1] = attempts
    out[#out + 1] = due
    out[#out + 1] = create
    out[#out + 1] = ''  -- last_error and errors, filled in below for jobs that have some
    out[#out + 1] = ''
  end
end
if #failed > 0 then
  local asked = {}
  for j, at in ipairs(failed) do asked[j] = out[at] end
  for j, value in ipairs(hmget_all(KEYS[7], asked)) do
    out[failed[j] + 7], out[failed[j] + 6] = split_errors(value)
  end
end
if limits then
  local leased = {}
  for j = 3, #out, 8 do leased[#leased + 1] = out[j] end
  call_all('ZREM', KEYS[10], leased)
end
call_all('HSET', KEYS[5], writes)
call_all('ZADD', KEYS[4], deadlines)
out[2] = retry_at(n)
return out
