--[[
  Trim: deletes finished jobs whose retention window has passed.

  Transition: COMPLETED -> (deleted), DEAD -> (deleted), CANCELLED -> (deleted)
  Trigger: the maintenance loop, once the retention window passed

  KEYS[1] completed zset      <prefix>:{<queue>}:completed  (member ulid, score finish ms)
  KEYS[2] dead zset           <prefix>:{<queue>}:dead
  KEYS[3] cancelled zset      <prefix>:{<queue>}:cancelled

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] retention ms
  ARGV[4] most jobs to delete per zset

  Returns the number of jobs deleted.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local cutoff, limit, deleted = now - tonumber(ARGV[3]), tonumber(ARGV[4]), 0

for k = 1, 3 do
  for _, ulid in ipairs(rcall('ZRANGEBYSCORE', KEYS[k], '-inf', cutoff, 'LIMIT', 0, limit)) do
    rcall('DEL', ARGV[2] .. ulid)
    rcall('ZREM', KEYS[k], ulid)
    deleted = deleted + 1
  end
end
return deleted
