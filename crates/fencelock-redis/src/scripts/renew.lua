-- fencelock renew / extend: compare-and-PEXPIRE by owner.
--
-- KEYS[1] lock key    value "<owner>:<token>"
-- ARGV[1] owner id
-- ARGV[2] new TTL in milliseconds, from now
--
-- Returns 1 when renewed, 0 when the key is gone or belongs to another owner.
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
end
return 0
