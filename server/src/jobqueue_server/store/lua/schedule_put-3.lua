--[[
  Schedule put: creates a schedule, or replaces its definition if it is still the version
  read (update, pause, resume), and plans its next tick.

  Transition: none (schedules, not jobs)
  Trigger: CreateSchedule, UpdateSchedule, PauseSchedule, ResumeSchedule

  KEYS[1] definitions hash    <prefix>:{~schedules}:defs   (name -> Schedule message)
  KEYS[2] states hash         <prefix>:{~schedules}:state  (name -> version|cursor|last run|last job;
                              field !version counts every put, so no two definitions, even
                              of a name deleted and created again, share a version)
  KEYS[3] next ticks zset     <prefix>:{~schedules}:due    (member name, score next tick ms)

  ARGV[1] name
  ARGV[2] the definition (a serialized Schedule)
  ARGV[3] the version read, or 0 to create
  ARGV[4] cursor ms: ticks up to it are considered done
  ARGV[5] next tick ms, or "" for none (paused, or past its end)
  ARGV[6] most schedules that may exist (create only)

  Returns {outcome, version}: outcome "ok", "exists" (create of a taken name), "missing"
  (no such schedule), "changed" (another call changed it since it was read), or "full".
]]
local rcall = redis.call
local name, expected = ARGV[1], tonumber(ARGV[3])
local state = rcall('HGET', KEYS[2], name)
local last_run, last_job = '', ''
if expected == 0 then
  if state then return {'exists', 0} end
  if rcall('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {'full', 0} end
else
  if not state then return {'missing', 0} end
  local current, _, run, job = string.match(state, '^(%d+)|(%-?%d+)|(%-?%d*)|(.*)$')
  if tonumber(current) ~= expected then return {'changed', tonumber(current)} end
  last_run, last_job = run, job
end
local version = rcall('HINCRBY', KEYS[2], '!version', 1)
rcall('HSET', KEYS[1], name, ARGV[2])
rcall('HSET', KEYS[2], name, version .. '|' .. ARGV[4] .. '|' .. last_run .. '|' .. last_job)
if ARGV[5] == '' then
  rcall('ZREM', KEYS[3], name)
else
  rcall('ZADD', KEYS[3], ARGV[5], name)
end
return {'ok', version}
