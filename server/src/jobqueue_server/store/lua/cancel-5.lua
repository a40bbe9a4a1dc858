--[[
  Cancel: stops a scheduled or queued job from being leased.

  Transition: SCHEDULED -> CANCELLED, QUEUED -> CANCELLED
  Trigger: Cancel

  KEYS[1] scheduled zset      <prefix>:{<queue>}:scheduled
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] cancelled zset      <prefix>:{<queue>}:cancelled  (member ulid, score finish ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] ulid

  Returns {code, state}; state is the job's current state when the code is -3.
  Codes: 1 cancelled; -1 job not found; -3 the job's state does not allow it
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local ulid = ARGV[3]
local key = ARGV[2] .. ulid
local f = rcall('HMGET', key, 'state', 'priority')
if not f[1] then return {-1, ''} end
if f[1] == 'scheduled' then
  rcall('ZREM', KEYS[1], ulid)
elseif f[1] == 'queued' then
  local ready = {KEYS[4], KEYS[3], KEYS[2]}
  rcall('LREM', ready[tonumber(f[2])], 1, ulid)
else
  return {-3, f[1]}
end
rcall('HSET', key, 'state', 'cancelled', 'finish_ms', now)
rcall('ZADD', KEYS[5], now, ulid)
return {1, 'cancelled'}
