--[[
  Fail: records a failed attempt of leased jobs whose lease token is still current.
  The job backs off to SCHEDULED, or is DEAD when non-retryable or out of attempts.

  Transition: ACTIVE -> SCHEDULED, ACTIVE -> DEAD
  Trigger: Fail, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] scheduled zset      <prefix>:{<queue>}:scheduled  (member ulid, score due ms)
  KEYS[3] dead zset           <prefix>:{<queue>}:dead       (member ulid, score finish ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] most error entries kept per job
  ARGV[4] number of jobs N, then N groups of 6 fields: ulid, lease token, error message,
          non-retryable (1/0), retry delay ms (-1: use the job's backoff policy),
          a random number in [0, 1) for the jitter

  Returns a flat array, two entries per job: a code and the retry's due ms (or -1).
  Codes: 1 scheduled for retry; 2 dead; -1 job not found; -2 lease token not current
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, keep, out = ARGV[2], tonumber(ARGV[3]), {}

local function backoff_ms(policy, attempts, rand)
  local initial, cap, mult, jitter = string.match(policy, '^([^,]+),([^,]+),([^,]+),([^,]+)$')
  local delay = math.min(tonumber(cap), tonumber(initial) * tonumber(mult) ^ (attempts - 1))
  return math.floor(delay * (1 - tonumber(jitter) * rand))
end

for i = 0, tonumber(ARGV[4]) - 1 do
  local a = 5 + i * 6
  local ulid, token = ARGV[a], ARGV[a + 1]
  local key = job_prefix .. ulid
  local f = rcall('HMGET', key, 'state', 'token', 'attempts', 'max_attempts', 'backoff', 'errors')
  if not f[1] then
    out[#out + 1] = -1
    out[#out + 1] = -1
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = -2
    out[#out + 1] = -1
  else
    local attempts = tonumber(f[3])
    local errors = cjson.decode(f[6] or '[]')
    errors[#errors + 1] = {attempt = attempts, message = ARGV[a + 2], time_ms = now}
    while #errors > keep do table.remove(errors, 1) end
    rcall('HSET', key, 'errors', cjson.encode(errors), 'last_error', ARGV[a + 2])
    rcall('HDEL', key, 'token', 'lease_expire_ms', 'worker')
    rcall('ZREM', KEYS[1], ulid)
    if ARGV[a + 3] == '1' or attempts >= tonumber(f[4]) then
      rcall('HSET', key, 'state', 'dead', 'finish_ms', now)
      rcall('ZADD', KEYS[3], now, ulid)
      out[#out + 1] = 2
      out[#out + 1] = -1
    else
      local delay = tonumber(ARGV[a + 4])
      if delay < 0 then delay = backoff_ms(f[5], attempts, tonumber(ARGV[a + 5])) end
      rcall('HSET', key, 'state', 'scheduled', 'due_ms', now + delay)
      rcall('ZADD', KEYS[2], now + delay, ulid)
      out[#out + 1] = 1
      out[#out + 1] = now + delay
    end
  end
end
return out
