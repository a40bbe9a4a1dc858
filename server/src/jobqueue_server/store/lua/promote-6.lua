--[[
  Promote: moves scheduled jobs whose due time has come to their ready list.

  Transition: SCHEDULED -> QUEUED
  Trigger: the maintenance loop, at a due time or the safety sweep

  KEYS[1] scheduled zset      <prefix>:{<queue>}:scheduled  (member ulid, score due ms)
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] job records hash    <prefix>:{<queue>}:jobs
  KEYS[6] group of hash       <prefix>:{<queue>}:group_of   (a grouped job is made ready in its group)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[3] most jobs to promote

  Returns {jobs promoted, earliest remaining due ms or -1}.
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local ready = {KEYS[4], KEYS[3], KEYS[2]}
local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]), 'WITHSCORES')

local ulids = {}
for i = 1, #due, 2 do ulids[#ulids + 1] = due[i] end
local jobs = batch_records(KEYS[5], ulids)
local pushes = {{}, {}, {}}
local groups = groups_of(KEYS[6], ulids)
local g = groups and group_keys(KEYS[6])
for i, ulid in ipairs(ulids) do
  local r = jobs.get(i)
  if r then  -- a due time without a job (never left by the scripts) is only removed
    -- Ready since it was due, not since this sweep: queue age counts any lateness.
    r[STATE], r[READY_MS] = 'queued', due[2 * i]
    jobs.save(ulid)
    if groups and groups[i] then
      push_grouped(g, groups[i], ulid, tonumber(r[PRIORITY]), tonumber(due[2 * i]), false)
    else
      local level = pushes[tonumber(r[PRIORITY])]
      level[#level + 1] = ulid
    end
  end
end
jobs.write()
call_all('ZREM', KEYS[1], ulids)
-- Earliest due first, each pushed on the left as one push per job would.
for level = 1, 3 do call_all('LPUSH', ready[level], pushes[level]) end
if #ulids > 0 then rcall(WAKE, ARGV[2], 'ready') end
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then next_due = tonumber(first[2]) end
return {#ulids, next_due}
