-- fencelock force unlock: delete whatever the lock key holds and raise the
-- fence counter past it, in one step (an operator breaking a wedged lock).
--
-- KEYS[1] lock key    (fencelock:{<key>}:lock)
-- KEYS[2] fence key   (fencelock:{<key>}:fence)
-- ARGV[1] wake-up channel (fencelock:{<key>}:wake)
--
-- Returns {the removed value or false, its pttl, the counter after the call}.
--
-- The INCR burns one token: every later grant's token is above the removed
-- grant's, and above the one this call returns. The old holder's renewal
-- finds the key gone (renew.lua answers 0): it learns that it lost the lock.
-- Waiters are woken with 'released', which every waiter takes.
local cur = redis.call('GET', KEYS[1])
local pttl = redis.call('PTTL', KEYS[1])
if cur then
  redis.call('DEL', KEYS[1])
end
local fence = redis.call('INCR', KEYS[2])
if cur then
  redis.call('PUBLISH', ARGV[1], 'released')
end
return {cur, pttl, fence}
