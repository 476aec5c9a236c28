-- fencelock release: compare-and-delete by owner, then wake one waiter; and,
-- for an acquire that gives up, its way out of the queue.
--
-- KEYS[1] lock key    value "<owner>:<token>"
-- KEYS[2] queue key   waiter ids scored by the server time (ms) their entry lapses
-- ARGV[1] owner id    ('' when only leaving the queue)
-- ARGV[2] wake-up channel (fencelock:{<key>}:wake)
-- ARGV[3] waiter id to take out of the queue ('' for none)
--
-- The wake-up names the waiter whose entry was refreshed last (the one most
-- surely alive: a waiter refreshes its entry on every attempt, a dead one
-- stops), and only that waiter tries; when no entry is live the wake-up is
-- 'released', which every waiter takes (waiters that do not queue: Redlock).
-- It goes out when our grant was deleted, or when a leaving waiter finds the
-- lock free (it may have been the one woken: the wake-up is passed on).
--
-- Returns 1 when our grant was deleted, 0 otherwise (a lock held by another
-- owner is never touched). Safe to call twice.
local deleted = 0
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[3])
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if ARGV[1] == '' or not (sep and string.sub(cur, 1, sep - 1) == ARGV[1]) then
    return 0 -- held by another: its release wakes the next waiter
  end
  redis.call('DEL', KEYS[1])
  deleted = 1
elseif ARGV[3] == '' then
  return 0 -- our grant is gone already: touch nothing
end
local wake = 'released'
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[1] then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if tonumber(last[2]) > now then
    wake = last[1]
  else
    redis.call('DEL', KEYS[2]) -- every entry has lapsed
  end
end
redis.call('PUBLISH', ARGV[2], wake)
return deleted
