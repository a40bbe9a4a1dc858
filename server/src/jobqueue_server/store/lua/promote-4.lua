--[[
  Promote: moves scheduled jobs whose due time has come to their ready list.

  Transition: SCHEDULED -> QUEUED
  Trigger: the maintenance loop, at a due time or the safety sweep

  KEYS[1] scheduled zset      <prefix>:{<queue>}:scheduled  (member ulid, score due ms)
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[4] most jobs to promote

  Returns {jobs promoted, earliest remaining due ms or -1}.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix = ARGV[2]
local ready = {KEYS[4], KEYS[3], KEYS[2]}
local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]), 'WITHSCORES')

for i = 1, #due, 2 do
  local ulid = due[i]
  local key = job_prefix .. ulid
  -- Ready since it was due, not since this sweep: queue age counts any lateness.
  rcall('HSET', key, 'state', 'queued', 'ready_ms', due[i + 1])
  rcall('LPUSH', ready[tonumber(rcall('HGET', key, 'priority'))], ulid)
  rcall('ZREM', KEYS[1], ulid)
end
if #due > 0 then rcall('PUBLISH', ARGV[3], 'ready') end
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then next_due = tonumber(first[2]) end
return {#due / 2, next_due}
