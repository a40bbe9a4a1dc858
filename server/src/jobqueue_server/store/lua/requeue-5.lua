--[[
  Requeue: takes back leases that were lost, either because their deadline passed
  (mode "expired": the reaper) or because the stream holding them ended (mode
  "released", with the tokens the stream held). The attempt stays counted: a job out of
  attempts is DEAD, any other goes back to the front of its ready list.

  Transition: ACTIVE -> QUEUED, ACTIVE -> DEAD
  Trigger: the maintenance loop (lease expired), or the end of the Lease stream that held the job (released)

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] dead zset           <prefix>:{<queue>}:dead

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[4] most error entries kept per job
  ARGV[5] mode: "expired" or "released"
  ARGV[6] expired: most leases to take back; released: number of pairs N, then N pairs
          of ulid, lease token

  Returns {jobs requeued, jobs dead, earliest remaining lease deadline ms or -1}.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, keep, mode = ARGV[2], tonumber(ARGV[4]), ARGV[5]
local ready = {KEYS[4], KEYS[3], KEYS[2]}
local requeued, dead = 0, 0

local function take_back(ulid, message)
  local key = job_prefix .. ulid
  local f = rcall('HMGET', key, 'attempts', 'max_attempts', 'priority', 'errors')
  local errors = cjson.decode(f[4] or '[]')
  errors[#errors + 1] = {attempt = tonumber(f[1]), message = message, time_ms = now}
  while #errors > keep do table.remove(errors, 1) end
  rcall('HSET', key, 'errors', cjson.encode(errors), 'last_error', message)
  rcall('HDEL', key, 'token', 'lease_expire_ms', 'worker')
  rcall('ZREM', KEYS[1], ulid)
  if tonumber(f[1]) >= tonumber(f[2]) then
    rcall('HSET', key, 'state', 'dead', 'finish_ms', now)
    rcall('ZADD', KEYS[5], now, ulid)
    dead = dead + 1
  else
    -- ready_ms keeps the time the job first became ready: it is the oldest in its list again.
    rcall('HSET', key, 'state', 'queued')
    rcall('RPUSH', ready[tonumber(f[3])], ulid)
    requeued = requeued + 1
  end
end

if mode == 'expired' then
  for _, ulid in ipairs(rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))) do
    take_back(ulid, 'lease expired')
  end
else
  for i = 0, tonumber(ARGV[6]) - 1 do
    local ulid = ARGV[7 + i * 2]
    local f = rcall('HMGET', job_prefix .. ulid, 'state', 'token')
    if f[1] == 'active' and f[2] == ARGV[8 + i * 2] then take_back(ulid, 'lease released: stream closed') end
  end
end
if requeued > 0 then rcall('PUBLISH', ARGV[3], 'ready') end
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_deadline = -1
if first[2] then next_deadline = tonumber(first[2]) end
return {requeued, dead, next_deadline}
