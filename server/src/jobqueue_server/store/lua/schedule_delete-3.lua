--[[
  Schedule delete: removes a schedule; the jobs it made stay.

  Transition: none (schedules, not jobs)
  Trigger: DeleteSchedule

  KEYS[1] definitions hash    <prefix>:{~schedules}:defs   (name -> Schedule message)
  KEYS[2] states hash         <prefix>:{~schedules}:state  (name -> version|cursor|last run|last job)
  KEYS[3] next ticks zset     <prefix>:{~schedules}:due    (member name, score next tick ms)

  ARGV[1] name

  Returns 1 when the schedule was removed, 0 when there was none.
]]
local name = ARGV[1]
redis.call('ZREM', KEYS[3], name)
redis.call('HDEL', KEYS[2], name)
return redis.call('HDEL', KEYS[1], name)
