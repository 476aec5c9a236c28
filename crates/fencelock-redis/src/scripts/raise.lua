-- fencelock raise: lift a key's fence counter to at least a floor.
--
-- KEYS[1] fence key   (fencelock:{<key>}:fence)
-- ARGV[1] floor       (a token handed out by a Redlock majority)
--
-- Returns the counter after the call. Never lowers it.
--
-- Redlock takes a grant's token as the highest of its nodes' counters and
-- writes it back to those nodes with this script: any later majority shares
-- at least one node with this one, so its INCR there goes above the floor.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local floor = tonumber(ARGV[1])
if cur < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return cur
