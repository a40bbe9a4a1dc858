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
  KEYS[6] job records hash    <prefix>:{<queue>}:jobs
  KEYS[7] results hash        <prefix>:{<queue>}:result
  KEYS[8] group of hash       <prefix>:{<queue>}:group_of   (a grouped job is made ready in its group)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[3] ulid

  Returns {code, state}; state is the job's current state when the code is -3.
  Codes: 1 queued; -1 job not found; -3 the job's state does not allow it
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local ulid = ARGV[3]
local r = parse_record(rcall('HGET', KEYS[6], ulid))
if not r then return {-1, ''} end
if r[STATE] ~= 'dead' and r[STATE] ~= 'cancelled' then return {-3, r[STATE]} end
local ready = {KEYS[5], KEYS[4], KEYS[3]}
rcall('ZREM', KEYS[1], ulid)
rcall('ZREM', KEYS[2], ulid)
r[STATE], r[ATTEMPTS], r[READY_MS], r[DUE_MS], r[FINISH_MS] = 'queued', 0, now, now, ''
rcall('HSET', KEYS[6], ulid, format_record(r))
rcall('HDEL', KEYS[7], ulid)
local group = rcall('HGET', KEYS[8], ulid)
if group then
  push_grouped(group_keys(KEYS[8]), group, ulid, tonumber(r[PRIORITY]), now, false)
else
  rcall('LPUSH', ready[tonumber(r[PRIORITY])], ulid)
end
rcall(WAKE, ARGV[2], 'ready')
return {1, 'queued'}
