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
  KEYS[9] job records hash    <prefix>:{<queue>}:jobs
  KEYS[10] paused flag        <prefix>:{<queue>}:paused
  KEYS[11] limits hash        <prefix>:{<queue>}:limits
  KEYS[12] waiting zset       <prefix>:{<queue>}:waiting
  KEYS[13] grouped ready count <prefix>:{<queue>}:gqueued   (ready jobs in groups)

  ARGV[1] now ms, or "" to use the Redis clock

  Returns {queued, scheduled, active, completed, dead, cancelled, oldest queued age ms,
  paused (1 or 0), rate, burst, max_active, group rate, group burst, group max_active (the
  limits as stored, "" when unset), waiting}. Queued counts the grouped ready jobs too; the age
  is that of the oldest job of the ready lists.
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local queued, heads = 0, {}
for k = 1, 3 do
  queued = queued + rcall('LLEN', KEYS[k])
  local head = rcall('LINDEX', KEYS[k], -1)  -- the next to be leased: the oldest ready
  if head then heads[#heads + 1] = head end
end
queued = queued + (tonumber(rcall('GET', KEYS[13])) or 0)
local oldest = now
for _, text in ipairs(hmget_all(KEYS[9], heads)) do
  local r = parse_record(text)
  local ready_ms = r and tonumber(r[READY_MS]) or now
  if ready_ms < oldest then oldest = ready_ms end
end
local limits = rcall('HMGET', KEYS[11], 'rate', 'burst', 'max_active', 'group_rate', 'group_burst',
  'group_max_active')
return {queued, rcall('ZCARD', KEYS[4]), rcall('ZCARD', KEYS[5]), rcall('ZCARD', KEYS[6]),
  rcall('ZCARD', KEYS[7]), rcall('ZCARD', KEYS[8]), now - oldest, rcall('EXISTS', KEYS[10]),
  limits[1] or '', limits[2] or '', limits[3] or '', limits[4] or '', limits[5] or '', limits[6] or '',
  rcall('ZCARD', KEYS[12])}
