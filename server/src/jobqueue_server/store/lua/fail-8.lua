--[[
  Fail: records a failed attempt of leased jobs whose lease token is still current.
  The job backs off to SCHEDULED, or is DEAD when non-retryable or out of attempts.

  Transition: ACTIVE -> SCHEDULED, ACTIVE -> DEAD
  Trigger: Fail, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] scheduled zset      <prefix>:{<queue>}:scheduled  (member ulid, score due ms)
  KEYS[3] dead zset           <prefix>:{<queue>}:dead       (member ulid, score finish ms)
  KEYS[4] job records hash    <prefix>:{<queue>}:jobs
  KEYS[5] errors hash         <prefix>:{<queue>}:errors
  KEYS[6] limits hash         <prefix>:{<queue>}:limits   (when it exists, a failed attempt
                              frees room under max_active: the queue's signal wakes streams)
  KEYS[7] dependents set      <prefix>:{<queue>}:dependents (ulids other jobs wait on: when one ends, its waiting jobs are told, prelude's end_dependents)
  KEYS[8] group of hash       <prefix>:{<queue>}:group_of   (a grouped job's failed attempt frees
                              room in its group, prelude's free_group_slots)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] most error entries kept per job
  ARGV[3] number of jobs N, then N groups of 6 fields: ulid, lease token, error message,
          non-retryable (1/0), retry delay ms (-1: use the job's backoff policy),
          a random number in [0, 1) for the jitter

  Returns a flat array, two entries per job: a code and the retry's due ms (or -1).
  Codes: 1 scheduled for retry; 2 dead; -1 job not found; -2 lease token not current
]]
local now = now_ms(ARGV[1])
local keep, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local ulids = {}
for i = 1, n do ulids[i] = ARGV[6 * i - 2] end
local jobs = batch_records(KEYS[4], ulids)
local history = batch_errors(KEYS[5], jobs, ulids)

local function backoff_ms(policy, attempts, rand)
  local initial, cap, mult, jitter = string.match(policy, '^([^,]+),([^,]+),([^,]+),([^,]+)$')
  local delay = math.min(tonumber(cap), tonumber(initial) * tonumber(mult) ^ (attempts - 1))
  return math.floor(delay * (1 - tonumber(jitter) * rand))
end

local out, left, dead, scheduled, ended = {}, {}, {}, {}, {}
for i = 1, n do
  local a = 6 * i - 2
  local ulid, token, message = ulids[i], ARGV[a + 1], ARGV[a + 2]
  local r = jobs.get(i)
  if not r then
    out[#out + 1] = -1
    out[#out + 1] = -1
  elseif r[STATE] ~= 'active' or r[TOKEN] ~= token then
    out[#out + 1] = -2
    out[#out + 1] = -1
  else
    local attempts = tonumber(r[ATTEMPTS])
    history.add(ulid, r, message, now, keep)
    r[TOKEN], r[LEASE_EXPIRE_MS], r[WORKER] = '', '', ''
    left[#left + 1] = ulid
    if ARGV[a + 3] == '1' or attempts >= tonumber(r[MAX_ATTEMPTS]) then
      r[STATE], r[FINISH_MS] = 'dead', now
      dead[#dead + 1] = now
      dead[#dead + 1] = ulid
      ended[#ended + 1] = ulid
      ended[#ended + 1] = 'dead'
      out[#out + 1] = 2
      out[#out + 1] = -1
    else
      local delay = tonumber(ARGV[a + 4])
      if delay < 0 then delay = backoff_ms(r[BACKOFF], attempts, tonumber(ARGV[a + 5])) end
      r[STATE], r[DUE_MS] = 'scheduled', now + delay
      scheduled[#scheduled + 1] = now + delay
      scheduled[#scheduled + 1] = ulid
      out[#out + 1] = 1
      out[#out + 1] = now + delay
    end
    jobs.save(ulid)
  end
end
jobs.write()
history.write()
call_all('ZREM', KEYS[1], left)
call_all('ZADD', KEYS[3], dead)
call_all('ZADD', KEYS[2], scheduled)
end_dependents(KEYS[7], ended)
local freed = free_group_slots(KEYS[8], left)
if #left > 0 and (freed or redis.call('EXISTS', KEYS[6]) == 1) then
  redis.call(WAKE, string.gsub(KEYS[6], ':limits$', ':signal'), 'ready')
end
return out
