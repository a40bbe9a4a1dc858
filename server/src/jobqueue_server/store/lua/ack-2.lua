--[[
  Ack: completes leased jobs whose lease token is still current.

  Transition: ACTIVE -> COMPLETED
  Trigger: Ack, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] completed zset      <prefix>:{<queue>}:completed  (member ulid, score finish ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] number of jobs N, then N groups of 3 fields: ulid, lease token, result

  Returns one code per job.
  Codes: 1 completed; -1 job not found; -2 lease token not current
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, out, done = ARGV[2], {}, {}

for i = 0, tonumber(ARGV[3]) - 1 do
  local ulid, token = ARGV[4 + i * 3], ARGV[5 + i * 3]
  local key = job_prefix .. ulid
  local fields = rcall('HMGET', key, 'state', 'token')
  if not fields[1] then
    out[#out + 1] = -1
  elseif fields[1] ~= 'active' or fields[2] ~= token then
    out[#out + 1] = -2
  else
    rcall('HSET', key, 'state', 'completed', 'finish_ms', now, 'result', ARGV[6 + i * 3])
    rcall('HDEL', key, 'token', 'lease_expire_ms', 'worker')
    done[#done + 1] = ulid
    out[#out + 1] = 1
  end
end
-- One ZREM and one ZADD for the whole batch (in slices: unpack is bounded by Lua's C stack).
for i = 1, #done, 2000 do
  local last = math.min(i + 1999, #done)
  rcall('ZREM', KEYS[1], unpack(done, i, last))
  local members = {}
  for j = i, last do
    members[#members + 1] = now
    members[#members + 1] = done[j]
  end
  rcall('ZADD', KEYS[2], unpack(members))
end
return out
