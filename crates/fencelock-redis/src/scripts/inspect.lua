-- fencelock inspect: read a lock's state (read-only).
--
-- KEYS[1] lock key, KEYS[2] fence key, KEYS[3] queue key (waiter ids scored by
-- the server time in ms at which each entry lapses)
--
-- Returns {value or false, pttl, last token or false, live queue entries}
local cur = redis.call('GET', KEYS[1])
local pttl = redis.call('PTTL', KEYS[1])
local fence = redis.call('GET', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queued = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
return {cur, pttl, fence, queued}
