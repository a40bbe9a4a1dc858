--[[
  Cancel: stops a waiting, scheduled or queued job from being leased, or an active one from
  running: its lease ends here, and the stops channel tells the server whose stream holds it.

  Transition: SCHEDULED -> CANCELLED, QUEUED -> CANCELLED, ACTIVE -> CANCELLED, WAITING -> CANCELLED
  Trigger: Cancel

  KEYS[1] scheduled zset      <prefix>:{<queue>}:scheduled
  KEYS[2] ready list, high    <prefix>:{<queue>}:ready:high
  KEYS[3] ready list, normal  <prefix>:{<queue>}:ready:normal
  KEYS[4] ready list, low     <prefix>:{<queue>}:ready:low
  KEYS[5] cancelled zset      <prefix>:{<queue>}:cancelled  (member ulid, score finish ms)
  KEYS[6] job records hash    <prefix>:{<queue>}:jobs
  KEYS[7] active zset         <prefix>:{<queue>}:active
  KEYS[8] waiting zset        <prefix>:{<queue>}:waiting    (and the job's parents:<ulid> hash)
  KEYS[9] dependents set      <prefix>:{<queue>}:dependents (ulids other jobs wait on: when one ends, its waiting jobs are told, prelude's end_dependents)
  KEYS[10] group of hash      <prefix>:{<queue>}:group_of   (a grouped job's ready entry is in its
                              group; an active one frees room in it)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] ulid
  ARGV[3] stops channel       <prefix>:stops  (the message: job id|lease token|cancelled)
  ARGV[4] job id

  Returns {code, state}; state is the job's current state when the code is -3.
  Codes: 1 cancelled; -1 job not found; -3 the job's state does not allow it
]]
local rcall = redis.call
local now = now_ms(ARGV[1])
local ulid = ARGV[2]
local r = parse_record(rcall('HGET', KEYS[6], ulid))
if not r then return {-1, ''} end
if r[STATE] == 'scheduled' then
  rcall('ZREM', KEYS[1], ulid)
elseif r[STATE] == 'queued' then
  local group = rcall('HGET', KEYS[10], ulid)
  if not (group and remove_grouped(group_keys(KEYS[10]), group, ulid)) then
    local ready = {KEYS[4], KEYS[3], KEYS[2]}
    rcall('LREM', ready[tonumber(r[PRIORITY])], 1, ulid)
  end
elseif r[STATE] == 'active' then
  rcall('ZREM', KEYS[7], ulid)
  if free_group_slots(KEYS[10], {ulid}) then
    rcall(WAKE, (string.gsub(KEYS[10], ':group_of$', ':signal')), 'ready')
  end
  rcall('PUBLISH', ARGV[3], ARGV[4] .. '|' .. r[TOKEN] .. '|cancelled')
  r[TOKEN], r[LEASE_EXPIRE_MS] = '', ''
elseif r[STATE] == 'waiting' then
  rcall('ZREM', KEYS[8], ulid)
  rcall('DEL', (string.gsub(KEYS[8], ':waiting$', ':parents:')) .. ulid)
else
  return {-3, r[STATE]}
end
r[STATE], r[FINISH_MS] = 'cancelled', now
rcall('HSET', KEYS[6], ulid, format_record(r))
rcall('ZADD', KEYS[5], now, ulid)
end_dependents(KEYS[9], {ulid, 'cancelled'})
return {1, 'cancelled'}
