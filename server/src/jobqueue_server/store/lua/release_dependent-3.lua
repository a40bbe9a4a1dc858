--[[
  Release dependent: ends the resolution of one settled job, once the resolver told every
  job in its children set (and removed them from it): the job is no longer a dependent unless
  a job attached to it meanwhile (it was retried), and its settled entry goes.

  Transition: none (dependency bookkeeping)
  Trigger: the resolver of store/dependencies.py, after the last page of a settled job's children

  KEYS[1] children set        <prefix>:{<queue>}:children:<ulid>
  KEYS[2] dependents set      <prefix>:{<queue>}:dependents
  KEYS[3] settled set         <prefix>:{<queue>}:settled   (member "<ulid>|<state>")

  ARGV[1] the job's ulid
  ARGV[2] the settled entry resolved

  Returns 1 when the job is no longer a dependent, 0 when new jobs wait on it.
]]
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
