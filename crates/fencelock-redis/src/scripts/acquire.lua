-- fencelock acquire: take the lock and hand out a fencing token, in one round trip.
--
-- KEYS[1] lock key    (fencelock:{<key>}:lock)   value "<owner>:<token>", with a PX expiry;
--                     or "handoff:<waiter id>" for the hand-off window after a release
--                     that handed the free lock to that waiter
-- KEYS[2] fence key   (fencelock:{<key>}:fence)  the per-key token counter, never expires
-- KEYS[3] queue key   (fencelock:{<key>}:queue)  waiting acquires: waiter ids scored by the
--                     server time (ms) at which the entry lapses (refreshed by each attempt)
-- KEYS[4] order key   (fencelock:{<key>}:order)  the same waiter ids scored by when each
--                     first queued: the order in which releases hand the lock over
-- ARGV[1] owner id    (32 hex digits, no ':')
-- ARGV[2] TTL in milliseconds
-- ARGV[3] waiter id   ('' when the caller will not wait: try_acquire, Redlock)
-- ARGV[4] lifetime of a queue entry in ms (the waiter re-checks well within it)
-- ARGV[5] '1' when this waiter may already be queued (leave the queue on a grant)
--
-- Returns {1, token}  granted (fresh, handed to this waiter, or our own grant found
--                     again after a lost reply)
--         {0, pttl}   busy: held by another owner, or handed to another waiter, for pttl
--                     more ms (-1: no expiry); a waiter is queued (its entry refreshed, its
--                     place kept), so that a release hands over to the oldest live waiter
--                     instead of waking all of them
--
-- SET NX PX: the lock is only taken when the key is absent, and the counter is
-- only incremented when a grant is made, so every grant gets a token greater
-- than every earlier grant of the same key. An uncontended acquire runs
-- SET, INCR, SET and touches no queue.
local owner = ARGV[1]
local ttl = ARGV[2]
local waiter = ARGV[3]
local function leave_queue()
  if ARGV[5] == '1' then
    redis.call('ZREM', KEYS[3], waiter)
    redis.call('ZREM', KEYS[4], waiter)
  end
end
local function grant()
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], owner .. ':' .. token, 'PX', ttl)
  leave_queue()
  return {1, token}
end
if redis.call('SET', KEYS[1], owner, 'NX', 'PX', ttl) then
  return grant()
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  local head = sep and string.sub(cur, 1, sep - 1)
  if head == owner then
    -- An idempotent retry: the first attempt took the lock but its reply was lost.
    redis.call('PEXPIRE', KEYS[1], ttl)
    leave_queue()
    return {1, tonumber(string.sub(cur, sep + 1))}
  end
  if head == 'handoff' and waiter ~= '' and string.sub(cur, sep + 1) == waiter then
    -- A release handed the free lock to this waiter.
    return grant()
  end
end
if waiter ~= '' then
  local life = tonumber(ARGV[4])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], now + life, waiter)
  redis.call('ZADD', KEYS[4], 'NX', now, waiter)
  redis.call('PEXPIRE', KEYS[3], life)
  redis.call('PEXPIRE', KEYS[4], life)
end
return {0, redis.call('PTTL', KEYS[1])}
