--[[
  Retry: sends a dead or cancelled job back to its ready list with attempts reset.
  Its error history is kept.

  Transition: DEAD -> QUEUED, CANCELLED -> QUEUED
  Trigger: Retry (redrive)

  KEYS[1] dead zset           <prefix>:{<queue>}:dead
  KEYS[2] cancelled zset      <prefix>:{<queue>}:cancelled
  KEYS[3] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[4] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[5] ready list, low     <prefix>:{<queue>}:ready:low

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[4] ulid

  Returns {code, state}; state is the job's current state when the code is -3.
  Codes: 1 queued; -1 job not found; -3 the job's state does not allow it
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local ulid = ARGV[4]
local key = ARGV[2] .. ulid
local f = rcall('HMGET', key, 'state', 'priority')
if not f[1] then return {-1, ''} end
if f[1] ~= 'dead' and f[1] ~= 'cancelled' then return {-3, f[1]} end
local ready = {KEYS[5], KEYS[4], KEYS[3]}
rcall('ZREM', KEYS[1], ulid)
rcall('ZREM', KEYS[2], ulid)
rcall('HDEL', key, 'finish_ms', 'result')
rcall('HSET', key, 'state', 'queued', 'attempts', 0, 'ready_ms', now, 'due_ms', now)
rcall('LPUSH', ready[tonumber(f[2])], ulid)
rcall('PUBLISH', ARGV[3], 'ready')
return {1, 'queued'}
