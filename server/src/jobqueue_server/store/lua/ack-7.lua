--[[
  Ack: completes leased jobs whose lease token is still current.

  Transition: ACTIVE -> COMPLETED
  Trigger: Ack, unary or on the Lease stream

  KEYS[1] active zset         <prefix>:{<queue>}:active
  KEYS[2] completed zset      <prefix>:{<queue>}:completed  (member ulid, score finish ms)
  KEYS[3] job records hash    <prefix>:{<queue>}:jobs
  KEYS[4] results hash        <prefix>:{<queue>}:result     (non-empty results only)
  KEYS[5] limits hash         <prefix>:{<queue>}:limits     (when it exists, a finished job
                              frees room under max_active: the queue's signal wakes streams)
  KEYS[6] dependents set      <prefix>:{<queue>}:dependents (ulids other jobs wait on: when one ends, its waiting jobs are told, prelude's end_dependents)
  KEYS[7] group of hash       <prefix>:{<queue>}:group_of   (a grouped job's end frees room in its
                              group, prelude's free_group_slots)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] number of jobs N, then N groups of 3 fields: ulid, lease token, result

  Returns one code per job.
  Codes: 1 completed; -1 job not found; -2 lease token not current
]]
local now, now_text = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local ulids = {}
for i = 1, n do ulids[i] = ARGV[3 * i] end
local texts = hmget_all(KEYS[3], ulids)

-- `latest` holds the records this call rewrote: a job named twice sees its first ack.
local out, latest, writes, done, finished, results, ended = {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local ulid, result = ulids[i], ARGV[3 * i + 2]
  local text = latest[ulid]
  if text == nil then text = texts[i] end
  local state, token, start, rest = string.match(text or '', ACK_VIEW)
  if not state then
    out[i] = -1
  elseif state ~= 'active' or token ~= ARGV[3 * i + 1] then
    out[i] = -2
  else
    text = completed_record(start, now_text, rest)
    latest[ulid] = text
    writes[#writes + 1] = ulid
    writes[#writes + 1] = text
    done[#done + 1] = ulid
    finished[#finished + 1] = now_text
    finished[#finished + 1] = ulid
    ended[#ended + 1] = ulid
    ended[#ended + 1] = 'completed'
    if result ~= '' then
      results[#results + 1] = ulid
      results[#results + 1] = result
    end
    out[i] = 1
  end
end
call_all('HSET', KEYS[3], writes)
call_all('HSET', KEYS[4], results)
call_all('ZREM', KEYS[1], done)
call_all('ZADD', KEYS[2], finished)
end_dependents(KEYS[6], ended)
local freed = free_group_slots(KEYS[7], done)
if #done > 0 and (freed or redis.call('EXISTS', KEYS[5]) == 1) then
  redis.call(WAKE, string.gsub(KEYS[5], ':limits$', ':signal'), 'ready')
end
return out
