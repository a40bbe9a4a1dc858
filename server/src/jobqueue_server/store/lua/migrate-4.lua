--[[
  Migrate: moves jobs stored by the previous layout (one hash per job, format 1) into the
  queue's hashes. Each job moves whole in this call: its entries written, its hash deleted.

  Transition: none (each job keeps its state)
  Trigger: server start, until `<prefix>:format` says the layout is current

  KEYS[1] job records hash    <prefix>:{<queue>}:jobs
  KEYS[2] wire bytes hash     <prefix>:{<queue>}:wire
  KEYS[3] errors hash         <prefix>:{<queue>}:errors
  KEYS[4] results hash        <prefix>:{<queue>}:result

  ARGV[1] job key prefix      <prefix>:{<queue>}:job:   (format 1; carries the queue's hash tag)
  ARGV[2] number of jobs N, then N pairs: ulid, wire bytes the server built for a hash stored
          without a wire field ("" for a hash that has one)

  Returns {jobs moved, how many of them with the wire bytes given, jobs whose hash was already
  gone (moved by another server), then the ulids of hashes left in place because they have no
  wire field and none was given}.
]]
local rcall = redis.call
local prefix = ARGV[1]
local records, wires, errors, results = {}, {}, {}, {}
local moved, built_used, gone, left = 0, 0, 0, {}

for i = 1, tonumber(ARGV[2]) do
  local ulid, built = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local flat = rcall('HGETALL', prefix .. ulid)
  local f = {}
  for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
  local wire = f.wire or (built ~= '' and built)
  if #flat == 0 then
    gone = gone + 1
  elseif not wire then
    left[#left + 1] = ulid
  else
    local has_errors = (f.errors or f.last_error) and '1' or '0'
    local r = {f.state or '', f.token or '', escape_worker(f.worker or ''), f.lease_expire_ms or '',
      f.start_ms or '', f.finish_ms or '', f.attempts or '0', has_errors, f.due_ms or '', f.ready_ms or '',
      f.create_ms or '', f.priority or '2', f.lease_ms or '0', f.max_attempts or '', f.backoff or ''}
    records[#records + 1] = ulid
    records[#records + 1] = format_record(r)
    wires[#wires + 1] = ulid
    wires[#wires + 1] = wire
    if has_errors == '1' then
      errors[#errors + 1] = ulid
      errors[#errors + 1] = (f.errors or '') .. '\n' .. (f.last_error or '')
    end
    if f.result and f.result ~= '' then
      results[#results + 1] = ulid
      results[#results + 1] = f.result
    end
    rcall('DEL', prefix .. ulid)
    moved = moved + 1
    if not f.wire then built_used = built_used + 1 end
  end
end
call_all('HSET', KEYS[1], records)
call_all('HSET', KEYS[2], wires)
call_all('HSET', KEYS[3], errors)
call_all('HSET', KEYS[4], results)
local reply = {moved, built_used, gone}
for _, ulid in ipairs(left) do reply[#reply + 1] = ulid end
return reply
