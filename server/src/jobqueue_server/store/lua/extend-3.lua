--[[
  Extend: moves the deadline of leases whose token is still current, never past the end of
  the attempt's timeout (its start plus the job's timeout).

  Transition: ACTIVE -> ACTIVE
  Trigger: Extend, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active   (member ulid, score deadline ms)
  KEYS[2] job records hash    <prefix>:{<queue>}:jobs
  KEYS[3] time limits hash    <prefix>:{<queue>}:deadlines (ulid -> timeout ms|start deadline ms)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] lease ms for jobs that carry no lease length of their own
  ARGV[3] number of jobs N, then N groups of 3 fields: ulid, lease token,
          lease ms from now (0: the job's own lease length, else ARGV[2])

  Returns a flat array, two entries per job: a code and the new deadline ms (or -1).
  Codes: 1 extended; -1 job not found; -2 lease token not current
]]
local now = now_ms(ARGV[1])
local default_lease, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local ulids = {}
for i = 1, n do ulids[i] = ARGV[3 * i + 1] end
local jobs = batch_records(KEYS[2], ulids)
local limits = false
if redis.call('EXISTS', KEYS[3]) == 1 then limits = hmget_all(KEYS[3], ulids) end

local out, deadlines = {}, {}
for i = 1, n do
  local ulid, token, lease = ulids[i], ARGV[3 * i + 2], tonumber(ARGV[3 * i + 3])
  local r = jobs.get(i)
  if not r then
    out[#out + 1] = -1
    out[#out + 1] = -1
  elseif r[STATE] ~= 'active' or r[TOKEN] ~= token then
    out[#out + 1] = -2
    out[#out + 1] = -1
  else
    if lease <= 0 then lease = tonumber(r[LEASE_MS]) or 0 end
    if lease <= 0 then lease = default_lease end
    local deadline = now + lease
    local timeout = limits and limits[i] and tonumber(string.match(limits[i], '^(%d*)|'))
    if timeout then deadline = math.min(deadline, tonumber(r[START_MS]) + timeout) end
    r[LEASE_EXPIRE_MS] = deadline
    jobs.save(ulid)
    deadlines[#deadlines + 1] = deadline
    deadlines[#deadlines + 1] = ulid
    out[#out + 1] = 1
    out[#out + 1] = deadline
  end
end
jobs.write()
call_all('ZADD', KEYS[1], deadlines)
return out
