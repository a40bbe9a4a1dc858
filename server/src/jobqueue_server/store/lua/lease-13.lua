--[[
  Lease: moves up to N ready jobs to ACTIVE, high priority first, FIFO within a level.
  Counts the attempt and issues a fresh lease token for each job. A job with a timeout gets
  a lease that ends by then; a leased job's start deadline no longer applies (expire-11.lua
  cancels the jobs not leased by theirs). A queue with limits (SetQueueLimits) leases no more
  than its rate's token bucket and its room under max_active allow. Groups (prelude's
  group_keys) take turns: each turn leases one job of the next group in the ring, between jobs
  of the ready lists, and a group its limits hold waits in `gblocked`.

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
  KEYS[13] group of hash      <prefix>:{<queue>}:group_of (and the group keys named after it)

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
local g = rcall('EXISTS', KEYS[13]) == 1 and group_keys(KEYS[13])
if g and (tonumber(rcall('GET', g.queued)) or 0) <= 0 then g = false end
if not g then
  for level = 1, 3 do
    if #ulids >= wanted then break end
    local popped = rcall('RPOP', KEYS[level], wanted - #ulids)
    if popped then
      for _, ulid in ipairs(popped) do ulids[#ulids + 1] = ulid end
    end
  end
else
  local limits = rcall('HMGET', KEYS[11], 'group_rate', 'group_burst', 'group_max_active')
  local group_rate, group_burst = tonumber(limits[1]) or 0, tonumber(limits[2]) or 0
  local group_max = tonumber(limits[3]) or 0
  if group_rate > 0 and group_burst <= 0 then group_burst = math.max(1, group_rate) end
  -- Groups whose rate let them go again by now take their turn.
  for _, group in ipairs(rcall('ZRANGEBYSCORE', g.blocked, '-inf', now, 'LIMIT', 0, 1000)) do
    rcall('ZREM', g.blocked, group)
    rcall('ZADD', g.ring, 'NX', rcall('INCR', g.turn), group)
  end
  -- One job of the ready lists, then one of the next group, in turn. Each round leases a job
  -- or takes a group out of the ring (emptied, or held by a limit): the loop is bounded.
  local lists, ring = true, true
  while #ulids < wanted and (lists or ring) do
    if lists then
      lists = false
      for level = 1, 3 do
        local ulid = rcall('RPOP', KEYS[level])
        if ulid then
          ulids[#ulids + 1], lists = ulid, true
          break
        end
      end
    end
    if ring and #ulids < wanted then
      local turn = rcall('ZPOPMIN', g.ring)
      if #turn == 0 then
        ring = false
      else
        local group = turn[1]
        local ready_key, until_ms, tokens = g.ready .. group, false, 0
        if group_max > 0 and (tonumber(rcall('HGET', g.active, group)) or 0) >= group_max then
          until_ms = '+inf'
        elseif group_rate > 0 then
          local at
          tokens, at = string.match(rcall('HGET', g.bucket, group) or '', '^([^|]*)|(.*)$')
          tokens, at = tonumber(tokens) or group_burst, tonumber(at) or now
          tokens = math.min(group_burst, tokens + math.max(0, now - at) * group_rate / 1000)
          if tokens < 1 then until_ms = now + math.ceil((1 - tokens) * 1000 / group_rate) end
        end
        if until_ms then
          if rcall('ZCARD', ready_key) > 0 then rcall('ZADD', g.blocked, until_ms, group) end
        else
          local job = rcall('ZPOPMIN', ready_key)
          if #job > 0 then
            ulids[#ulids + 1] = job[1]
            rcall('DECR', g.queued)
            rcall('HINCRBY', g.active, group, 1)
            if group_rate > 0 then rcall('HSET', g.bucket, group, (tokens - 1) .. '|' .. now_text) end
            if rcall('ZCARD', ready_key) > 0 then rcall('ZADD', g.ring, rcall('INCR', g.turn), group) end
          end
        end
      end
    end
  end
end
-- When to lease again, if a limit held back jobs that are ready: the queue's (its rate's next
-- token; 0: once an active job ends) or a group's (the earliest of `gblocked`: a time, or +inf
-- for a group at its max_active, which an ending job lets go), whichever comes first.
local function retry_at(leased)
  local at = -1
  local grouped_ready = g and (tonumber(rcall('GET', g.queued)) or 0) > 0
  if held and (grouped_ready or rcall('EXISTS', KEYS[1], KEYS[2], KEYS[3]) == 1) then
    at = held == 'active' and 0 or now + math.ceil((1 - (bucket - leased)) * 1000 / rate)
  end
  if grouped_ready and rcall('ZCARD', g.ring) == 0 then
    local first = rcall('ZRANGE', g.blocked, 0, 0, 'WITHSCORES')
    if first[2] then
      local group_at = first[2] == 'inf' and 0 or tonumber(first[2])
      if at < 0 or (group_at > 0 and (at == 0 or group_at < at)) then at = group_at end
    end
  end
  return at
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
