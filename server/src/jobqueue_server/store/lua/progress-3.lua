--[[
  Progress: records what handlers report of jobs they hold: their progress, and lines for
  their log (the last ARGV[2] kept). An update whose lease token is not current is dropped.

  Transition: none (ACTIVE stays ACTIVE)
  Trigger: ProgressUpdate on the Lease stream

  KEYS[1] job records hash    <prefix>:{<queue>}:jobs
  KEYS[2] progress hash       <prefix>:{<queue>}:progress  (ulid -> percent|ms|message)
  KEYS[3] logs hash           <prefix>:{<queue>}:logs      (ulid -> ms|line lines, oldest first)

  ARGV[1] now ms, or "" to use the Redis clock
  ARGV[2] most log lines kept per job
  ARGV[3] number of updates N, then N groups of 5 fields: ulid, lease token, percent ("" to
          keep it), message ("" with no percent: the progress stays as it was), log lines
          (joined by newlines, none holding one; "" for none)

  Returns one code per update.
  Codes: 1 recorded; -1 job not found; -2 lease token not current
]]
local rcall = redis.call
local now, now_text = now_ms(ARGV[1])
local keep, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local a = 4 + (i - 1) * 5
  local ulid, token, percent, message, lines = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local state, current = string.match(rcall('HGET', KEYS[1], ulid) or '', ACK_VIEW)
  if not state then
    out[i] = -1
  elseif state ~= 'active' or current ~= token then
    out[i] = -2
  else
    if percent ~= '' or message ~= '' then
      if percent == '' then
        percent = string.match(rcall('HGET', KEYS[2], ulid) or '', '^([^|]*)|') or '0'
      end
      rcall('HSET', KEYS[2], ulid, percent .. '|' .. now_text .. '|' .. message)
    end
    if lines ~= '' then
      local log = (rcall('HGET', KEYS[3], ulid) or '') .. string.gsub(lines, '[^\n]+', now_text .. '|%0') .. '\n'
      local count = select(2, string.gsub(log, '\n', ''))
      local start = 1
      while count > keep do
        start = string.find(log, '\n', start, true) + 1
        count = count - 1
      end
      rcall('HSET', KEYS[3], ulid, string.sub(log, start))
    end
    out[i] = 1
  end
end
return out
