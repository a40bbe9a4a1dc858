--[[
  Schedule fire: records that a schedule's ticks up to a cursor are done (their jobs were
  enqueued, each with its tick's idempotency key, before this call) and plans the next tick.
  Only the first of several servers doing so for the same ticks moves the cursor.

  Transition: none (schedules, not jobs)
  Trigger: the scheduler loop of any server

  KEYS[1] definitions hash    <prefix>:{~schedules}:defs   (name -> Schedule message)
  KEYS[2] states hash         <prefix>:{~schedules}:state  (name -> version|cursor|last run|last job)
  KEYS[3] next ticks zset     <prefix>:{~schedules}:due    (member name, score next tick ms)

  ARGV[1] name
  ARGV[2] the version the ticks were computed from
  ARGV[3] the new cursor ms
  ARGV[4] next tick ms, or "" for none (past its end)
  ARGV[5] the latest tick that made a job, or "" when none did
  ARGV[6] that job's id

  Returns "ok", "missing" (deleted), "changed" (redefined since it was read: the
  ticks of the new definition count from its own cursor) or "done" (another server moved
  the cursor as far already).
]]
local rcall = redis.call
local name = ARGV[1]
local state = rcall('HGET', KEYS[2], name)
if not state then return 'missing' end
local version, cursor, last_run, last_job = string.match(state, '^(%d+)|(%-?%d+)|(%-?%d*)|(.*)$')
if version ~= ARGV[2] then return 'changed' end
if tonumber(cursor) >= tonumber(ARGV[3]) then return 'done' end
if ARGV[5] ~= '' and (last_run == '' or tonumber(ARGV[5]) > tonumber(last_run)) then
  last_run, last_job = ARGV[5], ARGV[6]
end
rcall('HSET', KEYS[2], name, version .. '|' .. ARGV[3] .. '|' .. last_run .. '|' .. last_job)
if ARGV[4] == '' then
  rcall('ZREM', KEYS[3], name)
else
  rcall('ZADD', KEYS[3], ARGV[4], name)
end
return 'ok'
