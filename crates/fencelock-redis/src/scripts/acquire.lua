-- fencelock acquire: take the lock and hand out a fencing token, in one round trip.
--
-- KEYS[1] lock key    (fencelock:{<key>}:lock)   value "<owner>:<token>", with a PX expiry
-- KEYS[2] fence key   (fencelock:{<key>}:fence)  the per-key token counter, never expires
-- KEYS[3] queue key   (fencelock:{<key>}:queue)  waiting acquires: a sorted set of waiter ids,
--                     scored by the server time (ms) at which the entry lapses
-- ARGV[1] owner id    (32 hex digits, no ':')
-- ARGV[2] TTL in milliseconds
-- ARGV[3] waiter id   ('' when the caller will not wait: try_acquire, Redlock)
-- ARGV[4] lifetime of a queue entry in ms (the waiter re-checks well within it)
-- ARGV[5] '1' when this waiter may already be queued (leave the queue on a grant)
--
-- Returns {1, token}  granted (fresh, or our own grant found again after a lost reply)
--         {0, pttl}   busy: another owner holds it for pttl more ms (-1: no expiry);
--                     a waiter is queued (or its entry refreshed), so that a release
--                     wakes one live waiter instead of all of them
--
-- SET NX PX: the lock is only taken when the key is absent, and the counter is
-- only incremented when it was taken, so every grant gets a token greater than
-- every earlier grant of the same key.
local owner = ARGV[1]
local ttl = ARGV[2]
local waiter = ARGV[3]
local function granted(token)
  if ARGV[5] == '1' then
    redis.call('ZREM', KEYS[3], waiter)
  end
  return {1, token}
end
if redis.call('SET', KEYS[1], owner, 'NX', 'PX', ttl) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], owner .. ':' .. token, 'PX', ttl)
  return granted(token)
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == owner then
    -- An idempotent retry: the first attempt took the lock but its reply was lost.
    redis.call('PEXPIRE', KEYS[1], ttl)
    return granted(tonumber(string.sub(cur, sep + 1)))
  end
end
if waiter ~= '' then
  local life = tonumber(ARGV[4])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], now + life, waiter)
  redis.call('PEXPIRE', KEYS[3], life)
end
return {0, redis.call('PTTL', KEYS[1])}
