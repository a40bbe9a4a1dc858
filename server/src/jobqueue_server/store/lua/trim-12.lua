--[[
  Trim: deletes finished jobs whose retention window has passed.

  Transition: COMPLETED -> (deleted), DEAD -> (deleted), CANCELLED -> (deleted)
  Trigger: the maintenance loop, once the retention window passed

  KEYS[1] completed zset      <prefix>:{<queue>}:completed  (member ulid, score finish ms)
  KEYS[2] dead zset           <prefix>:{<queue>}:dead
  KEYS[3] cancelled zset      <prefix>:{<queue>}:cancelled
  KEYS[4] job records hash    <prefix>:{<queue>}:jobs
  KEYS[5] wire bytes hash     <prefix>:{<queue>}:wire
  KEYS[6] errors hash         <prefix>:{<queue>}:errors
  KEYS[7] results hash        <prefix>:{<queue>}:result
  KEYS[8] progress hash       <prefix>:{<queue>}:progress
  KEYS[9] logs hash           <prefix>:{<queue>}:logs
  KEYS[10] time limits hash   <prefix>:{<queue>}:deadlines  (its third field: the unique key)
  KEYS[11] unique keys hash   <prefix>:{<queue>}:unique     (unique key -> the ulid holding it)
  KEYS[12] group of hash      <prefix>:{<queue>}:group_of   (ulid -> group key)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] retention ms
  ARGV[3] most jobs to delete per zset

  Returns the number of jobs deleted.
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local cutoff, limit = now - tonumber(ARGV[2]), tonumber(ARGV[3])

local gone = {}
for k = 1, 3 do
  local ulids = rcall('ZRANGEBYSCORE', KEYS[k], '-inf', cutoff, 'LIMIT', 0, limit)
  call_all('ZREM', KEYS[k], ulids)
  for _, ulid in ipairs(ulids) do gone[#gone + 1] = ulid end
end
-- A unique key still naming a deleted job is freed (a key taken by a later job is not).
if #gone > 0 and rcall('EXISTS', KEYS[10]) == 1 then
  local limits = hmget_all(KEYS[10], gone)
  for i, ulid in ipairs(gone) do
    local key = limits[i] and string.match(limits[i], '^[^|]*|[^|]*|(.+)$')
    if key and rcall('HGET', KEYS[11], key) == ulid then rcall('HDEL', KEYS[11], key) end
  end
end
-- Every entry of the jobs, from each of the queue's hashes at once.
for k = 4, 10 do call_all('HDEL', KEYS[k], gone) end
call_all('HDEL', KEYS[12], gone)
return #gone
