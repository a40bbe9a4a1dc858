--[[
  Requeue: takes back leases that were lost, either because their deadline passed
  (mode "expired": the reaper) or because the stream holding them ended (mode
  "released", with the tokens the stream held). The attempt stays counted: a job out of
  attempts is DEAD, any other goes back to the front of its ready list. A lease that ran to
  the end of its job's timeout is an attempt that timed out: the error says so, and the stops
  channel tells the worker still running it to stop.

  Transition: ACTIVE -> QUEUED, ACTIVE -> DEAD
  Trigger: the maintenance loop (lease expired), or the end of the Lease stream that held the job (released)

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] dead zset           <prefix>:{<queue>}:dead
  KEYS[6] job records hash    <prefix>:{<queue>}:jobs
  KEYS[7] errors hash         <prefix>:{<queue>}:errors
  KEYS[8] time limits hash    <prefix>:{<queue>}:deadlines (ulid -> timeout ms|start deadline ms)
  KEYS[9] dependents set      <prefix>:{<queue>}:dependents (ulids other jobs wait on: when one ends, its waiting jobs are told, prelude's end_dependents)
  KEYS[10] group of hash      <prefix>:{<queue>}:group_of   (a grouped job goes back to the front
                              of its group, and frees room in it)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[3] most error entries kept per job
  ARGV[4] mode: "expired" or "released"
  ARGV[5] stops channel       <prefix>:stops  (the message: job id|lease token|timed_out)
  ARGV[6] the queue's name (job ids are <queue>:<ulid>)
  ARGV[7] expired: most leases to take back; released: number of pairs N, then N pairs
          of ulid, lease token

  Returns {jobs requeued, jobs dead, earliest remaining lease deadline ms or -1}.
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local keep, expired = tonumber(ARGV[3]), ARGV[4] == 'expired'
local ready = {KEYS[4], KEYS[3], KEYS[2]}

local ulids, tokens, message = {}, {}, 'lease released: stream closed'
if expired then
  ulids = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))
  message = 'lease expired'
else
  for i = 1, tonumber(ARGV[7]) do
    ulids[i], tokens[i] = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
  end
end
local jobs = batch_records(KEYS[6], ulids)
local history = batch_errors(KEYS[7], jobs, ulids)
local limits = false
if expired and #ulids > 0 and rcall('EXISTS', KEYS[8]) == 1 then limits = hmget_all(KEYS[8], ulids) end

local left, dead, pushes, requeued, ended = {}, {}, {{}, {}, {}}, 0, {}
local groups = groups_of(KEYS[10], ulids)
local g = groups and group_keys(KEYS[10])
local woke = false
for i, ulid in ipairs(ulids) do
  local r = jobs.get(i)
  if expired and not r then
    left[#left + 1] = ulid  -- a deadline without a job (never left by the scripts)
  elseif r and (expired or (r[STATE] == 'active' and r[TOKEN] == tokens[i])) then
    local timeout = limits and limits[i] and tonumber(string.match(limits[i], '^(%d*)|'))
    if timeout and tonumber(r[LEASE_EXPIRE_MS]) >= tonumber(r[START_MS]) + timeout then
      history.add(ulid, r, 'timed out after ' .. (timeout / 1000) .. ' s', now, keep)
      rcall('PUBLISH', ARGV[5], ARGV[6] .. ':' .. ulid .. '|' .. r[TOKEN] .. '|timed_out')
    else
      history.add(ulid, r, message, now, keep)
    end
    r[TOKEN], r[LEASE_EXPIRE_MS], r[WORKER] = '', '', ''
    left[#left + 1] = ulid
    if tonumber(r[ATTEMPTS]) >= tonumber(r[MAX_ATTEMPTS]) then
      r[STATE], r[FINISH_MS] = 'dead', now
      dead[#dead + 1] = now
      dead[#dead + 1] = ulid
      ended[#ended + 1] = ulid
      ended[#ended + 1] = 'dead'
    else
      -- ready_ms keeps the time the job first became ready: it is the oldest in its list again.
      r[STATE] = 'queued'
      if groups and groups[i] then
        push_grouped(g, groups[i], ulid, tonumber(r[PRIORITY]), now, true)
      else
        local level = pushes[tonumber(r[PRIORITY])]
        level[#level + 1] = ulid
      end
      requeued = requeued + 1
    end
    jobs.save(ulid)
    if groups and groups[i] and free_group_slot(g, groups[i]) then woke = true end
  end
end
jobs.write()
history.write()
call_all('ZREM', KEYS[1], left)
call_all('ZADD', KEYS[5], dead)
end_dependents(KEYS[9], ended)
-- RPUSH puts each job at the front of its level, in the order taken back, as one push per job.
for level = 1, 3 do call_all('RPUSH', ready[level], pushes[level]) end
if requeued > 0 or woke then rcall(WAKE, ARGV[2], 'ready') end
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_deadline = -1
if first[2] then next_deadline = tonumber(first[2]) end
return {requeued, #dead / 2, next_deadline}
