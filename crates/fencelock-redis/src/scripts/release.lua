-- fencelock release: compare-and-delete by owner, then hand the lock to the
-- oldest live waiter; and, for an acquire that gives up, its way out of the queue.
--
-- KEYS[1] lock key    value "<owner>:<token>"
-- KEYS[2] queue key   waiter ids scored by the server time (ms) their entry lapses
-- KEYS[3] order key   the same ids scored by when each first queued
-- KEYS[4] next key    the waiter the lock was handed to (PX: the hand-off window)
-- ARGV[1] owner id    ('' when only leaving the queue)
-- ARGV[2] wake-up channel (fencelock:{<key>}:wake)
-- ARGV[3] waiter id to take out of the queue ('' for none)
-- ARGV[4] hand-off window in ms ('0': name the waiter, reserve nothing)
--
-- The wake-up names the waiter that queued first among those whose entry is
-- still live (a waiter refreshes its entry on every attempt, a dead one stops;
-- lapsed entries met on the way are dropped), and only that waiter tries. For
-- the hand-off window the free lock is kept for it: a releasing client that
-- asks again at once does not take the lock back from a waiter that queued
-- before it. When no entry is live the wake-up is 'released', which every
-- waiter takes (waiters that do not queue: Redlock). It goes out when our
-- grant was deleted, or when a leaving waiter finds the lock free and not
-- handed to another (it may have been the one woken: the wake-up is passed on).
--
-- Returns 1 when our grant was deleted, 0 otherwise (a lock held by another
-- owner is never touched). Safe to call twice.
local deleted = 0
local leaving = ARGV[3]
if leaving ~= '' then
  redis.call('ZREM', KEYS[2], leaving)
  redis.call('ZREM', KEYS[3], leaving)
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if ARGV[1] == '' or not (sep and string.sub(cur, 1, sep - 1) == ARGV[1]) then
    return 0 -- held by another: its release hands over to the next waiter
  end
  redis.call('DEL', KEYS[1])
  deleted = 1
else
  if leaving == '' then
    return 0 -- our grant is gone already: touch nothing
  end
  local handed = redis.call('GET', KEYS[4])
  if handed and handed ~= leaving then
    return 0 -- being handed to another waiter
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wake = 'released'
while true do
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  if not first then
    break
  end
  local lapses = redis.call('ZSCORE', KEYS[2], first)
  if lapses and tonumber(lapses) > now then
    wake = first
    break
  end
  redis.call('ZREM', KEYS[3], first)
  redis.call('ZREM', KEYS[2], first)
end
local window = tonumber(ARGV[4])
if wake ~= 'released' and window > 0 then
  redis.call('SET', KEYS[4], wake, 'PX', window)
else
  redis.call('DEL', KEYS[4])
end
if wake == 'released' then
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('PUBLISH', ARGV[2], wake)
return deleted
