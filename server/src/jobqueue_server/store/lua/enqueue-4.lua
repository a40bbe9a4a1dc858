--[[
  Enqueue: adds jobs to one queue, honouring idempotency keys.

  Transition: (new) -> QUEUED, (new) -> SCHEDULED
  Trigger: Enqueue, EnqueueBatch (one call per queue)

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] scheduled zset      <prefix>:{<queue>}:scheduled   (member ulid, score due ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] job key prefix      <prefix>:{<queue>}:job:   (carries the queue's hash tag)
  ARGV[3] idempotency prefix  <prefix>:{<queue>}:idem:  (carries the queue's hash tag)
  ARGV[4] idempotency window ms
  ARGV[5] wake-up channel     <prefix>:{<queue>}:signal (pub/sub)
  ARGV[6] number of jobs N, then N groups of 9 fields:
          ulid, priority (1 low, 2 normal, 3 high), due ms (absolute, or -1),
          delay ms, wire (the job's serialized immutable fields, opaque here), max_attempts,
          backoff, lease ms, idempotency key ("" for none)

  Returns a flat array, two entries per job: the job's ulid and 1 when an earlier job
  with the same idempotency key was returned instead (0 for a new job). The last entry is
  the earliest due ms among jobs scheduled by this call, or -1.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
if not now then
  local t = rcall('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local job_prefix, idem_prefix = ARGV[2], ARGV[3]
local idem_window = tonumber(ARGV[4])
local ready = {KEYS[3], KEYS[2], KEYS[1]}
local out, next_due = {}, -1
local pushes = {{}, {}, {}}  -- new ready ulids per priority level, pushed once at the end

for i = 0, tonumber(ARGV[6]) - 1 do
  local a = 7 + i * 9
  local ulid, idem_key = ARGV[a], ARGV[a + 8]
  local existing = false
  if idem_key ~= '' then
    local seen = rcall('GET', idem_prefix .. idem_key)
    if seen then
      local sep = string.find(seen, '|', 1, true)
      if tonumber(string.sub(seen, sep + 1)) > now then existing = string.sub(seen, 1, sep - 1) end
    end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local due = tonumber(ARGV[a + 2])
    if due < 0 then due = now + tonumber(ARGV[a + 3]) end
    local state = 'queued'
    if due > now then state = 'scheduled' end
    local fields = {'state', state, 'priority', ARGV[a + 1], 'create_ms', now,
      'due_ms', due, 'wire', ARGV[a + 4], 'attempts', 0, 'max_attempts', ARGV[a + 5],
      'backoff', ARGV[a + 6], 'lease_ms', ARGV[a + 7]}
    if state == 'queued' then
      fields[#fields + 1] = 'ready_ms'
      fields[#fields + 1] = now
      local level = tonumber(ARGV[a + 1])
      pushes[level][#pushes[level] + 1] = ulid
    else
      rcall('ZADD', KEYS[4], due, ulid)
      if next_due < 0 or due < next_due then next_due = due end
    end
    rcall('HSET', job_prefix .. ulid, unpack(fields))
    if idem_key ~= '' then
      rcall('SET', idem_prefix .. idem_key, ulid .. '|' .. (now + idem_window), 'PX', idem_window)
    end
    out[#out + 1] = ulid
    out[#out + 1] = 0
  end
end
-- One LPUSH per level for the whole call, in slices (unpack is bounded by Lua's C stack);
-- it pushes in argument order, so FIFO within a level holds as with one push per job.
-- Only a push onto an empty list signals: a stream waits only after it found the lists
-- empty, and it watches before it looks, so the push that refills a list wakes it.
local wake = false
for level = 1, 3 do
  local ulids = pushes[level]
  for i = 1, #ulids, 4000 do
    local last = math.min(i + 3999, #ulids)
    if rcall('LPUSH', ready[level], unpack(ulids, i, last)) == last - i + 1 then wake = true end
  end
end
if wake then rcall('PUBLISH', ARGV[5], 'ready') end
out[#out + 1] = next_due
return out
