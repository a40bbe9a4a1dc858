--[[
  Extend: moves the deadline of leases whose token is still current.

  Transition: ACTIVE -> ACTIVE
  Trigger: Extend, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active   (member ulid, score deadline ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] lease ms for jobs that carry no lease length of their own
  ARGV[4] number of jobs N, then N groups of 3 fields: ulid, lease token,
          lease ms from now (0: the job's own lease length, else ARGV[3])

  Returns a flat array, two entries per job: a code and the new deadline ms (or -1).
  Codes: 1 extended; -1 job not found; -2 lease token not current
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, default_lease, out = ARGV[2], tonumber(ARGV[3]), {}

for i = 0, tonumber(ARGV[4]) - 1 do
  local ulid, token = ARGV[5 + i * 3], ARGV[6 + i * 3]
  local key = job_prefix .. ulid
  local f = rcall('HMGET', key, 'state', 'token', 'lease_ms')
  if not f[1] then
    out[#out + 1] = -1
    out[#out + 1] = -1
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = -2
    out[#out + 1] = -1
  else
    local lease = tonumber(ARGV[7 + i * 3])
    if lease <= 0 then lease = tonumber(f[3]) end
    if lease <= 0 then lease = default_lease end
    rcall('HSET', key, 'lease_expire_ms', now + lease)
    rcall('ZADD', KEYS[1], now + lease, ulid)
    out[#out + 1] = 1
    out[#out + 1] = now + lease
  end
end
return out
