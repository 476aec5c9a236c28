-- fencelock release: compare-and-delete by owner, then hand the free lock to
-- the oldest live waiter; and, for an acquire that gives up, its way out of the queue.
--
-- KEYS[1] lock key    value "<owner>:<token>", or "handoff:<waiter id>" (see acquire.lua)
-- KEYS[2] queue key   waiter ids scored by the server time (ms) their entry lapses
-- KEYS[3] order key   the same ids scored by when each first queued
-- ARGV[1] owner id    ('' when only leaving the queue)
-- ARGV[2] wake-up channel (fencelock:{<key>}:wake)
-- ARGV[3] waiter id to take out of the queue ('' for none)
-- ARGV[4] hand-off window in ms ('0': name the waiter, reserve nothing)
--
-- The wake-up names the waiter that queued first among those whose entry is
-- still live (a waiter refreshes its entry on every attempt, a dead one stops;
-- lapsed entries met on the way are dropped), and only that waiter tries. For
-- the hand-off window the lock key holds "handoff:<its id>", which only that
-- waiter's acquire may take: a releasing client that asks again at once queues
-- behind the waiters that were there before it. When no entry is live the
-- wake-up is 'released', which every waiter takes (waiters that do not queue:
-- Redlock). It goes out when our grant was deleted, or when a leaving waiter
-- finds the lock free or handed to itself (it may have been the one woken: the
-- hand-off is passed on).
--
-- Returns 1 when our grant was deleted, 0 otherwise (a lock held by another
-- owner, or handed to another waiter, is never touched). Safe to call twice.
-- An uncontended release runs GET, DEL, ZRANGE and PUBLISH.
local deleted = 0
local leaving = ARGV[3]
if leaving ~= '' then
  redis.call('ZREM', KEYS[2], leaving)
  redis.call('ZREM', KEYS[3], leaving)
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  local head = sep and string.sub(cur, 1, sep - 1)
  if ARGV[1] ~= '' and head == ARGV[1] then
    deleted = 1
  elseif not (leaving ~= '' and head == 'handoff' and string.sub(cur, sep + 1) == leaving) then
    return 0 -- held by another, or handed to another waiter
  end
  redis.call('DEL', KEYS[1])
elseif leaving == '' then
  return 0 -- our grant is gone already: touch nothing
end
local wake = 'released'
local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
if first then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  while first do
    local lapses = redis.call('ZSCORE', KEYS[2], first)
    if lapses and tonumber(lapses) > now then
      wake = first
      break
    end
    redis.call('ZREM', KEYS[3], first)
    redis.call('ZREM', KEYS[2], first)
    first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  end
  local window = tonumber(ARGV[4])
  if wake ~= 'released' and window > 0 then
    redis.call('SET', KEYS[1], 'handoff:' .. wake, 'PX', window)
  end
end
redis.call('PUBLISH', ARGV[2], wake)
return deleted
