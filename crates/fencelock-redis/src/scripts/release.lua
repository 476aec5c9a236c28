-- fencelock release: compare-and-delete by owner, then wake the waiters.
--
-- KEYS[1] lock key    value "<owner>:<token>"
-- ARGV[1] owner id
-- ARGV[2] wake-up channel (fencelock:{<key>}:wake)
--
-- Returns 1 when our grant was deleted, 0 when the key is gone or belongs to
-- another owner (nothing is touched then). Safe to call twice.
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('PUBLISH', ARGV[2], 'released')
    return 1
  end
end
return 0
