--[[
  Expire: cancels the jobs whose start deadline passed before any worker leased them.

  Transition: QUEUED -> CANCELLED, SCHEDULED -> CANCELLED, WAITING -> CANCELLED
  Trigger: the maintenance loop, at the earliest start deadline

  KEYS[1] start deadlines     <prefix>:{<queue>}:expiring   (member ulid, score start deadline ms)
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] scheduled zset      <prefix>:{<queue>}:scheduled
  KEYS[6] cancelled zset      <prefix>:{<queue>}:cancelled
  KEYS[7] job records hash    <prefix>:{<queue>}:jobs
  KEYS[8] errors hash         <prefix>:{<queue>}:errors
  KEYS[9] waiting zset        <prefix>:{<queue>}:waiting    (and the job's parents:<ulid> hash)
  KEYS[10] dependents set     <prefix>:{<queue>}:dependents (ulids other jobs wait on: when one ends, its waiting jobs are told, prelude's end_dependents)
  KEYS[11] group of hash      <prefix>:{<queue>}:group_of   (a grouped job's ready entry is in its group)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] most error entries kept per job
  ARGV[3] most jobs to look at

  Returns {jobs cancelled, the earliest remaining start deadline ms or -1}.
]]
local rcall = redis.call
local now, now_text = now_ms(ARGV[1])
local ulids = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local ready = {KEYS[4], KEYS[3], KEYS[2]}
local count, ended = 0, {}
for _, ulid in ipairs(ulids) do
  local r = parse_record(rcall('HGET', KEYS[7], ulid))
  -- Leased, finished or gone meanwhile: the deadline no longer applies.
  if r and (r[STATE] == 'queued' or r[STATE] == 'scheduled' or r[STATE] == 'waiting') then
    if r[STATE] == 'queued' then
      local group = rcall('HGET', KEYS[11], ulid)
      if not (group and remove_grouped(group_keys(KEYS[11]), group, ulid)) then
        rcall('LREM', ready[tonumber(r[PRIORITY])], 1, ulid)
      end
    elseif r[STATE] == 'waiting' then
      rcall('ZREM', KEYS[9], ulid)
      rcall('DEL', (string.gsub(KEYS[9], ':waiting$', ':parents:')) .. ulid)
    else
      rcall('ZREM', KEYS[5], ulid)
    end
    r[STATE], r[FINISH_MS], r[HAS_ERRORS] = 'cancelled', now_text, '1'
    rcall('HSET', KEYS[7], ulid, format_record(r))
    rcall('HSET', KEYS[8], ulid, errors_with(rcall('HGET', KEYS[8], ulid), tonumber(r[ATTEMPTS]) or 0,
      'not started before its start deadline', now, tonumber(ARGV[2])))
    rcall('ZADD', KEYS[6], now, ulid)
    count = count + 1
    ended[#ended + 1] = ulid
    ended[#ended + 1] = 'cancelled'
  end
end
call_all('ZREM', KEYS[1], ulids)
end_dependents(KEYS[10], ended)
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {count, first[2] and tonumber(first[2]) or -1}
