--[[
  Ack: completes leased jobs whose lease token is still current.

  Transition: ACTIVE -> COMPLETED
  Trigger: Ack, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] completed zset      <prefix>:{<queue>}:completed  (member ulid, score finish ms)
  KEYS[3] job records hash    <prefix>:{<queue>}:jobs
  KEYS[4] results hash        <prefix>:{<queue>}:result     (non-empty results only)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] number of jobs N, then N groups of 3 fields: ulid, lease token, result

  Returns one code per job.
  Codes: 1 completed; -1 job not found; -2 lease token not current
]]
local now = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local ulids = {}
for i = 1, n do ulids[i] = ARGV[3 * i] end
local jobs = batch_records(KEYS[3], ulids)

local out, done, finished, results = {}, {}, {}, {}
for i = 1, n do
  local ulid, token, result = ulids[i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local r = jobs.get(i)
  if not r then
    out[i] = -1
  elseif r[STATE] ~= 'active' or r[TOKEN] ~= token then
    out[i] = -2
  else
    r[STATE], r[FINISH_MS], r[TOKEN], r[LEASE_EXPIRE_MS], r[WORKER] = 'completed', now, '', '', ''
    jobs.save(ulid)
    done[#done + 1] = ulid
    finished[#finished + 1] = now
    finished[#finished + 1] = ulid
    if result ~= '' then
      results[#results + 1] = ulid
      results[#results + 1] = result
    end
    out[i] = 1
  end
end
jobs.write()
call_all('HSET', KEYS[4], results)
call_all('ZREM', KEYS[1], done)
call_all('ZADD', KEYS[2], finished)
return out
