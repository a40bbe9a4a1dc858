--[[
  Stats: counts one queue's jobs by state and finds the age of its oldest ready job.
  Read-only.

  Transition: none (read-only)
  Trigger: Stats, and the queue-age figures

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] scheduled zset      <prefix>:{<queue>}:scheduled
  KEYS[5] active zset         <prefix>:{<queue>}:active
  KEYS[6] completed zset      <prefix>:{<queue>}:completed
  KEYS[7] dead zset           <prefix>:{<queue>}:dead
  KEYS[8] cancelled zset      <prefix>:{<queue>}:cancelled

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)

  Returns {queued, scheduled, active, completed, dead, cancelled, oldest queued age ms}.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local queued, oldest = 0, now
for k = 1, 3 do
  queued = queued + rcall('LLEN', KEYS[k])
  local tail = rcall('LINDEX', KEYS[k], -1)
  if tail then
    local ready_ms = tonumber(rcall('HGET', ARGV[2] .. tail, 'ready_ms') or now)
    if ready_ms < oldest then oldest = ready_ms end
  end
end
return {queued, rcall('ZCARD', KEYS[4]), rcall('ZCARD', KEYS[5]), rcall('ZCARD', KEYS[6]),
  rcall('ZCARD', KEYS[7]), rcall('ZCARD', KEYS[8]), now - oldest}
