--[[
  Attach: tells jobs of one queue that WAITING jobs wait on them. A job still pending or
  active keeps the waiting job's id in its children set; one that has ended answers its state
  at once, and the server resolves the waiting job with it (resolve-12.lua). Idempotent: the
  maintenance pass attaches again a waiting job whose enqueue did not finish this step.

  Transition: none (dependency bookkeeping)
  Trigger: Enqueue with depends_on, after the enqueue script; the maintenance pass

  KEYS[1] job records hash    <prefix>:{<queue>}:jobs
  KEYS[2] dependents set      <prefix>:{<queue>}:dependents  (ulids other jobs wait on), and,
                              named after it, each one's <prefix>:{<queue>}:children:<ulid> set

  ARGV[1] number of pairs N, then N pairs: parent ulid, the waiting job's id

  Returns one entry per pair: "" when attached, else the parent's state when it has ended
  ("completed", "dead", "cancelled"), or "missing" when it does not exist.
]]
local rcall = redis.call
local children = string.gsub(KEYS[2], ':dependents$', ':children:')
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local ulid, child = ARGV[2 * i], ARGV[2 * i + 1]
  local state = string.match(rcall('HGET', KEYS[1], ulid) or '', '^([^|]*)|')
  if not state then
    out[i] = 'missing'
  elseif state == 'completed' or state == 'dead' or state == 'cancelled' then
    out[i] = state
  else
    rcall('SADD', children .. ulid, child)
    rcall('SADD', KEYS[2], ulid)
    out[i] = ''
  end
end
return out
