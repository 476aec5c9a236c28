-- fencelock inspect: read a lock's state (read-only).
--
-- KEYS[1] lock key, KEYS[2] fence key
--
-- Returns {value or false, pttl, last token or false}
local cur = redis.call('GET', KEYS[1])
local pttl = redis.call('PTTL', KEYS[1])
local fence = redis.call('GET', KEYS[2])
return {cur, pttl, fence}
