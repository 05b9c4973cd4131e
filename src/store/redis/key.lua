-- KEYS: a key record's hash. ARGV: op, then its arguments; every op first folds the counter
-- increments a client sends along: pairs of (field, increment) from ARGV[first] on.
--   register, tier, group (hex), fingerprint: creates the record if missing; returns 0;
--   disable, reason: the first reason recorded stays; returns the reason in force;
--   enable: back into service; returns the reason it was disabled (0: none);
--   read, counters: {tier, dis, group, c0, c1, ...}; {} when there is no such record.
local meta, op = KEYS[1], ARGV[1]
if op == 'register' then
  redis.call('HSETNX', meta, 'tier', ARGV[2])
  redis.call('HSETNX', meta, 'grp', ARGV[3])
  redis.call('HSETNX', meta, 'fp', ARGV[4])
  redis.call('HSETNX', meta, 'dis', 0)
  fold(meta, 5)
  return 0
end
if redis.call('EXISTS', meta) == 0 then
  if op == 'read' then return {} end
  return -1
end
if op == 'disable' then
  fold(meta, 3)
  local was = tonumber(redis.call('HGET', meta, 'dis') or '0')
  if was ~= 0 then return was end
  redis.call('HSET', meta, 'dis', ARGV[2])
  return tonumber(ARGV[2])
elseif op == 'enable' then
  fold(meta, 2)
  local was = tonumber(redis.call('HGET', meta, 'dis') or '0')
  redis.call('HSET', meta, 'dis', 0)
  return was
elseif op == 'read' then
  fold(meta, 3)
  local out = {tonumber(redis.call('HGET', meta, 'tier') or '0'),
    tonumber(redis.call('HGET', meta, 'dis') or '0'), redis.call('HGET', meta, 'grp') or ''}
  for c = 0, tonumber(ARGV[2]) - 1 do
    out[#out + 1] = tonumber(redis.call('HGET', meta, 'c' .. c) or '0')
  end
  return out
end
return redis.error_reply('unknown key op ' .. op)
