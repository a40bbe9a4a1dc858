--[[
  Partitions grow: sets how many partitions a queue has, never fewer than it has.

  Transition: none (queue configuration)
  Trigger: CreateQueue

  KEYS[1] partition counts hash  <prefix>:{~partitions}  (queue -> partition count)

  ARGV[1] queue
  ARGV[2] partitions asked for (1 or more)

  Returns {count before (0: never set, one partition), count now}.
]]
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local asked = tonumber(ARGV[2])
if asked > before and asked > 1 then
  redis.call('HSET', KEYS[1], ARGV[1], asked)
  return {before, asked}
end
return {before, math.max(before, 1)}
