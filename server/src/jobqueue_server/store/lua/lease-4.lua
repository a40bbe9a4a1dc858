--[[
  Lease: moves up to N ready jobs to ACTIVE, high priority first, FIFO within a level.
  Counts the attempt and issues a fresh lease token for each job.

  Transition: QUEUED -> ACTIVE
  Trigger: a Lease stream with free credit

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] active zset         <prefix>:{<queue>}:active   (member ulid, score lease deadline ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] most jobs to lease
  ARGV[4] lease ms for jobs that carry no lease length of their own
  ARGV[5] token base (random, unique per call); each token is base .. "." .. index
  ARGV[6] worker id

  Returns a flat array: the lease's start ms (now), then 8 entries per job: ulid, lease
  deadline ms, then the hash fields wire, attempts (this lease's), due_ms, create_ms,
  last_error, errors. Job number n (from 1) has the token ARGV[5] .. "." .. n.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, wanted = ARGV[2], tonumber(ARGV[3])
local default_lease, token_base, worker = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local out, n, deadlines = {now}, 0, {}

-- Two commands per job (HMGET, HSET) and one ZADD per call for all deadlines: the fields
-- are read before the write, so the reply carries the new attempt count.
for level = 1, 3 do
  if n >= wanted then break end
  local ulids = rcall('RPOP', KEYS[level], wanted - n)
  if ulids then
    for _, ulid in ipairs(ulids) do
      local key = job_prefix .. ulid
      local f = rcall('HMGET', key, 'wire', 'attempts', 'lease_ms', 'due_ms', 'create_ms', 'last_error',
        'errors')
      local lease = tonumber(f[3] or '0') or 0
      if lease <= 0 then lease = default_lease end
      n = n + 1
      local deadline = now + lease
      local attempts = (tonumber(f[2] or '0') or 0) + 1
      rcall('HSET', key, 'state', 'active', 'attempts', attempts, 'token', token_base .. '.' .. n,
        'start_ms', now, 'lease_expire_ms', deadline, 'worker', worker)
      deadlines[#deadlines + 1] = deadline
      deadlines[#deadlines + 1] = ulid
      out[#out + 1] = ulid
      out[#out + 1] = deadline
      out[#out + 1] = f[1] or ''
      out[#out + 1] = attempts
      out[#out + 1] = f[4] or ''
      out[#out + 1] = f[5] or ''
      out[#out + 1] = f[6] or ''
      out[#out + 1] = f[7] or ''
    end
  end
end
-- ZADD takes every member at once; unpack is bounded by Lua's C stack, so in slices.
for i = 1, #deadlines, 4000 do
  rcall('ZADD', KEYS[4], unpack(deadlines, i, math.min(i + 3999, #deadlines)))
end
return out
