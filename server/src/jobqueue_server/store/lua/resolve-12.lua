--[[
  Resolve: tells WAITING jobs of one queue that a job they depend on has ended. Once every
  parent completed, a job is QUEUED (SCHEDULED when its delay has not run out yet); when one
  ended otherwise, its failure policy decides: CANCELLED or DEAD with an error naming the
  parent, or (run anyway) it counts as done. Idempotent: each parent is crossed off a job's
  parents hash once, so a pair told twice (two servers, a retried pass) changes nothing more.

  Transition: WAITING -> QUEUED, WAITING -> SCHEDULED, WAITING -> CANCELLED, WAITING -> DEAD
  Trigger: a parent ended (the resolver of store/dependencies.py), or had ended when attached

  KEYS[1] job records hash    <prefix>:{<queue>}:jobs
  KEYS[2] waiting zset        <prefix>:{<queue>}:waiting    (and each job's parents:<ulid> hash)
  KEYS[3] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[4] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[5] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[6] scheduled zset      <prefix>:{<queue>}:scheduled
  KEYS[7] dead zset           <prefix>:{<queue>}:dead
  KEYS[8] cancelled zset      <prefix>:{<queue>}:cancelled
  KEYS[9] errors hash         <prefix>:{<queue>}:errors
  KEYS[10] dependents set     <prefix>:{<queue>}:dependents (a job ended here may have its own)
  KEYS[11] attaching zset     <prefix>:{<queue>}:attaching
  KEYS[12] group of hash      <prefix>:{<queue>}:group_of   (a grouped job is made ready in its group)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] wake-up channel     <prefix>:{<queue>}:signal
  ARGV[3] most error entries kept per job
  ARGV[4] number of triples N, then N triples: the waiting job's ulid, the parent's job id,
          the parent's state ("completed", "dead", "cancelled" or "missing")

  Returns {jobs released (queued or scheduled), jobs ended (cancelled or dead), the earliest
  due ms among the jobs scheduled, or -1}.
]]
local rcall = redis.call
local now, now_text = now_ms(ARGV[1])
local keep = tonumber(ARGV[3])
local parents = string.gsub(KEYS[2], ':waiting$', ':parents:')
local ready = {KEYS[5], KEYS[4], KEYS[3]}
local released, ended, next_due, wake = 0, {}, -1, false

-- The job leaves WAITING: its parents hash and its waiting entries go.
local function leave(ulid)
  rcall('DEL', parents .. ulid)
  rcall('ZREM', KEYS[2], ulid)
  rcall('ZREM', KEYS[11], ulid)
end

for i = 1, tonumber(ARGV[4]) do
  local a = 2 + 3 * i
  local ulid, parent, state = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local key = parents .. ulid
  if rcall('HDEL', key, parent) == 1 then
    local r = parse_record(rcall('HGET', KEYS[1], ulid))
    local policy = rcall('HGET', key, '')
    if not r or r[STATE] ~= 'waiting' then
      rcall('DEL', key)  -- cancelled meanwhile: nothing waits any more
    elseif state == 'completed' or policy == '3' then
      if rcall('HLEN', key) <= 1 then
        leave(ulid)
        local due = tonumber(r[DUE_MS])
        if due > now then
          r[STATE] = 'scheduled'
          rcall('ZADD', KEYS[6], due, ulid)
          if next_due < 0 or due < next_due then next_due = due end
        else
          r[STATE], r[READY_MS] = 'queued', now_text
          local group = rcall('HGET', KEYS[12], ulid)
          if group then
            push_grouped(group_keys(KEYS[12]), group, ulid, tonumber(r[PRIORITY]), now, false)
          else
            rcall('LPUSH', ready[tonumber(r[PRIORITY])], ulid)
          end
          wake = true
        end
        rcall('HSET', KEYS[1], ulid, format_record(r))
        released = released + 1
      end
    else
      leave(ulid)
      local message = 'dependency ' .. parent .. ' ended ' .. string.upper(state)
      if state == 'missing' then message = 'dependency ' .. parent .. ' no longer exists' end
      local final = policy == '2' and 'dead' or 'cancelled'
      r[STATE], r[FINISH_MS], r[HAS_ERRORS] = final, now_text, '1'
      rcall('HSET', KEYS[1], ulid, format_record(r))
      rcall('HSET', KEYS[9], ulid, errors_with(rcall('HGET', KEYS[9], ulid), tonumber(r[ATTEMPTS]) or 0,
        message, now, keep))
      rcall('ZADD', final == 'dead' and KEYS[7] or KEYS[8], now, ulid)
      ended[#ended + 1] = ulid
      ended[#ended + 1] = final
    end
  end
end
end_dependents(KEYS[10], ended)
if wake then rcall(WAKE, ARGV[2], 'ready') end
return {released, #ended / 2, next_due}
