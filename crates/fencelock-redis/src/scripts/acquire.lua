-- fencelock acquire: take the lock and hand out a fencing token, in one round trip.
--
-- KEYS[1] lock key    (fencelock:{<key>}:lock)   value "<owner>:<token>", with a PX expiry
-- KEYS[2] fence key   (fencelock:{<key>}:fence)  the per-key token counter, never expires
-- ARGV[1] owner id    (32 hex digits, no ':')
-- ARGV[2] TTL in milliseconds
--
-- Returns {1, token}  granted (fresh, or our own grant found again after a lost reply)
--         {0, pttl}   busy: another owner holds it for pttl more ms (-1: no expiry)
--
-- SET NX PX: the lock is only taken when the key is absent, and the counter is
-- only incremented when it was taken, so every grant gets a token greater than
-- every earlier grant of the same key.
local owner = ARGV[1]
local ttl = ARGV[2]
if redis.call('SET', KEYS[1], owner, 'NX', 'PX', ttl) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], owner .. ':' .. token, 'PX', ttl)
  return {1, token}
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == owner then
    -- An idempotent retry: the first attempt took the lock but its reply was lost.
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {1, tonumber(string.sub(cur, sep + 1))}
  end
end
return {0, redis.call('PTTL', KEYS[1])}
