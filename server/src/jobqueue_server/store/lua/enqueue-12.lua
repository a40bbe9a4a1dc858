--[[
  Enqueue: adds jobs to one queue, honouring idempotency keys and unique keys (a job whose
  unique key another job of the queue holds while waiting, scheduled, queued or active is that
  job). A job with dependencies is WAITING: the server then attaches it to each parent
  (attach-2.lua), and resolve-12.lua queues it once they completed.

  Transition: (new) -> QUEUED, (new) -> SCHEDULED, (new) -> WAITING
  Trigger: Enqueue, EnqueueBatch (one call per queue)

  KEYS[1] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[2] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[3] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[4] scheduled zset      <prefix>:{<queue>}:scheduled   (member ulid, score due ms)
  KEYS[5] job records hash    <prefix>:{<queue>}:jobs        (field ulid, value the record)
  KEYS[6] wire bytes hash     <prefix>:{<queue>}:wire        (field ulid)
  KEYS[7] time limits hash    <prefix>:{<queue>}:deadlines   (ulid -> timeout ms|start deadline ms)
  KEYS[8] start deadlines     <prefix>:{<queue>}:expiring    (member ulid, score start deadline ms)
  KEYS[9] unique keys hash    <prefix>:{<queue>}:unique      (unique key -> the ulid holding it)
  KEYS[10] waiting zset       <prefix>:{<queue>}:waiting     (member ulid, score enqueue ms)
  KEYS[11] attaching zset     <prefix>:{<queue>}:attaching   (member ulid, score enqueue ms)
           and, named after KEYS[10], each WAITING job's <prefix>:{<queue>}:parents:<ulid> hash
           (parent job id -> 1, and "" -> the failure policy digit)
  KEYS[12] group of hash      <prefix>:{<queue>}:group_of    (ulid -> group key; a ready grouped
           job goes to its group, prelude's push_grouped, not to a ready list)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] idempotency prefix  <prefix>:{<queue>}:idem:  (carries the queue's hash tag)
  ARGV[3] idempotency window ms
  ARGV[4] wake-up channel     <prefix>:{<queue>}:signal (pub/sub)
  ARGV[5] number of jobs N, then N groups of 10 fields:
          ulid, spec (the record's fixed fields "priority|lease ms|max_attempts|backoff",
          priority one digit: 1 low, 2 normal, 3 high), due ms (absolute, or -1), delay ms,
          wire (the job's serialized immutable fields, opaque here), idempotency key ("" for none),
          time limits ("timeout ms|start deadline ms|unique key", each may be empty; "" for
          none), unique key ("" for none), dependencies ("<policy digit>|<job id> <job id>...",
          "" for none), group key ("" for none)
  ARGV[6 + N*10] (optional) the wake-up message, "ready" when absent: the enqueuing server names
          itself, so that its own listener can skip a signal it has acted on already

  Returns a flat array, two entries per job: the job's ulid and 1 when an earlier job
  with the same idempotency or unique key was returned instead (0 for a new job). The last entry is
  the earliest due ms among jobs scheduled by this call, or -1.
]]
local rcall = redis.call
local now, now_text = now_ms(ARGV[1])
local idem_prefix, idem_window = ARGV[2], tonumber(ARGV[3])
local ready = {KEYS[3], KEYS[2], KEYS[1]}
local out, next_due = {}, -1
-- Everything is written once at the end: the records and wires of all jobs in one HSET each,
-- the new ready ulids in one LPUSH per level, the scheduled ones in one ZADD.
local records, wires, pushes, scheduled, limits, expiring = {}, {}, {{}, {}, {}}, {}, {}, {}
-- No token, worker, deadline, start or finish; no attempt and no error yet.
local head = '||||||0|0|'
-- Unique keys taken by this call, which writes its records only at the end.
local claimed = {}

local parents_prefix = string.gsub(KEYS[10], ':waiting$', ':parents:')
local waiting, grouped = {}, {}
local g = false
for i = 0, tonumber(ARGV[5]) - 1 do
  local a = 6 + i * 10
  local ulid, spec, idem_key, unique_key = ARGV[a], ARGV[a + 1], ARGV[a + 5], ARGV[a + 7]
  local existing = false
  if idem_key ~= '' then
    local seen = rcall('GET', idem_prefix .. idem_key)
    if seen then
      local sep = string.find(seen, '|', 1, true)
      if tonumber(string.sub(seen, sep + 1)) > now then existing = string.sub(seen, 1, sep - 1) end
    end
  end
  if unique_key ~= '' and not existing then
    existing = claimed[unique_key] or false
    if not existing then
      local holder = rcall('HGET', KEYS[9], unique_key)
      local state = holder and string.match(rcall('HGET', KEYS[5], holder) or '', '^([^|]*)|')
      if state == 'scheduled' or state == 'queued' or state == 'active' or state == 'waiting' then
        existing = holder
      end
    end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    -- Times are kept as texts: formatting a number costs as much as the rest of a job.
    local due, due_text = tonumber(ARGV[a + 2]), ARGV[a + 2]
    if due < 0 then
      if ARGV[a + 3] == '0' then
        due, due_text = now, now_text
      else
        due = now + tonumber(ARGV[a + 3])
        due_text = tostring(due)
      end
    end
    local record
    local dependencies = ARGV[a + 8]
    if dependencies ~= '' then
      record = 'waiting' .. head .. due_text .. '||' .. now_text .. '|' .. spec
      waiting[#waiting + 1] = now_text
      waiting[#waiting + 1] = ulid
      local policy, ids = string.match(dependencies, '^(%d)|(.*)$')
      local fields = {'', policy}
      for id in string.gmatch(ids, '%S+') do
        fields[#fields + 1] = id
        fields[#fields + 1] = '1'
      end
      call_all('HSET', parents_prefix .. ulid, fields)
    elseif due > now then
      record = 'scheduled' .. head .. due_text .. '||' .. now_text .. '|' .. spec
      scheduled[#scheduled + 1] = due_text
      scheduled[#scheduled + 1] = ulid
      if next_due < 0 or due < next_due then next_due = due end
    else
      record = 'queued' .. head .. due_text .. '|' .. now_text .. '|' .. now_text .. '|' .. spec
      local group = ARGV[a + 9]
      if group == '' then
        local level = pushes[tonumber(string.sub(spec, 1, 1))]
        level[#level + 1] = ulid
      else
        g = g or group_keys(KEYS[12])
        push_grouped(g, group, ulid, tonumber(string.sub(spec, 1, 1)), now, false)
      end
    end
    if ARGV[a + 9] ~= '' then
      grouped[#grouped + 1] = ulid
      grouped[#grouped + 1] = ARGV[a + 9]
    end
    records[#records + 1] = ulid
    records[#records + 1] = record
    wires[#wires + 1] = ulid
    wires[#wires + 1] = ARGV[a + 4]
    local limit = ARGV[a + 6]
    if unique_key ~= '' then
      claimed[unique_key] = ulid
      rcall('HSET', KEYS[9], unique_key, ulid)
    end
    if limit ~= '' then
      limits[#limits + 1] = ulid
      limits[#limits + 1] = limit
      local start_by = string.match(limit, '^%d*|(%d+)')
      if start_by then
        expiring[#expiring + 1] = start_by
        expiring[#expiring + 1] = ulid
      end
    end
    if idem_key ~= '' then
      rcall('SET', idem_prefix .. idem_key, ulid .. '|' .. (now + idem_window), 'PX', ARGV[3])
    end
    out[#out + 1] = ulid
    out[#out + 1] = 0
  end
end
call_all('HSET', KEYS[5], records)
call_all('HSET', KEYS[6], wires)
call_all('ZADD', KEYS[4], scheduled)
call_all('HSET', KEYS[7], limits)
call_all('ZADD', KEYS[8], expiring)
call_all('ZADD', KEYS[10], waiting)
call_all('ZADD', KEYS[11], waiting)
call_all('HSET', KEYS[12], grouped)
-- LPUSH pushes in argument order, so FIFO within a level holds as with one push per job.
-- Only a push onto an empty list signals: a stream waits only after it found the lists
-- empty, and it watches before it looks, so the push that refills a list wakes it.
local wake = g ~= false  -- a grouped job was made ready
for level = 1, 3 do
  if call_all('LPUSH', ready[level], pushes[level]) == #pushes[level] then wake = true end
end
if wake then rcall(WAKE, ARGV[4], ARGV[6 + tonumber(ARGV[5]) * 10] or 'ready') end
out[#out + 1] = next_due
return out
