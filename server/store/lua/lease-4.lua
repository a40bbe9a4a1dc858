--[[
  Lease: moves up to N ready jobs to ACTIVE, high priority first, FIFO within a level.
  Counts the attempt and issues a fresh lease token for each job.

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

  Returns a flat array, 18 entries per job: ulid, token, lease deadline ms, then the hash
  fields priority, payload, payload_bytes, attempts, max_attempts, create_ms, due_ms,
  metadata, lease_ms, backoff, idem_key, errors, start_ms, worker, last_error.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, wanted = ARGV[2], tonumber(ARGV[3])
local default_lease, token_base, worker = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local out, n = {}, 0

for level = 1, 3 do
  if n >= wanted then break end
  local ulids = rcall('RPOP', KEYS[level], wanted - n)
  if ulids then
    for _, ulid in ipairs(ulids) do
      local key = job_prefix .. ulid
      local lease = tonumber(rcall('HGET', key, 'lease_ms') or '0')
      if lease <= 0 then lease = default_lease end
      n = n + 1
      local token, deadline = token_base .. '.' .. n, now + lease
      rcall('HINCRBY', key, 'attempts', 1)
      rcall('HSET', key, 'state', 'active', 'token', token, 'start_ms', now,
        'lease_expire_ms', deadline, 'worker', worker)
      rcall('ZADD', KEYS[4], deadline, ulid)
      out[#out + 1] = ulid
      out[#out + 1] = token
      out[#out + 1] = deadline
      local fields = rcall('HMGET', key, 'priority', 'payload', 'payload_bytes', 'attempts',
        'max_attempts', 'create_ms', 'due_ms', 'metadata', 'lease_ms', 'backoff', 'idem_key', 'errors',
        'start_ms', 'worker', 'last_error')
      for f = 1, 15 do out[#out + 1] = fields[f] or '' end
    end
  end
end
return out
