-- KEYS: a quota record's meta. ARGV: op, then its arguments. The rare writes:
--   cool, delta_ms, cause: cool down until now + delta, unless it already cools longer;
--   unavailable, delta_ms: the model is not on the group's tier until now + delta (later wins);
--   lower, field (r, d or tk), value: lowers a limit in force (never raises it, never below 1);
--     returns 1 if lowered;
--   streak, bump (0 or 1): returns the capacity streak before the bump;
--   reset: ends the streak; fallback: counts a call served as a fallback.
-- Returns -1 when there is no such record.
local meta, op = KEYS[1], ARGV[1]
if redis.call('EXISTS', meta) == 0 then return -1 end
if op == 'cool' then
  local untl = server_now(meta) + tonumber(ARGV[2])
  if untl > tonumber(redis.call('HGET', meta, 'cd') or '0') then
    redis.call('HSET', meta, 'cd', untl, 'cdc', ARGV[3])
  end
  return 0
elseif op == 'unavailable' then
  local untl = server_now(meta) + tonumber(ARGV[2])
  if untl > tonumber(redis.call('HGET', meta, 'un') or '0') then
    redis.call('HSET', meta, 'un', untl)
  end
  return 0
elseif op == 'lower' then
  local v = math.max(1, tonumber(ARGV[3]))
  if v < tonumber(redis.call('HGET', meta, ARGV[2]) or '0') then
    redis.call('HSET', meta, ARGV[2], v)
    return 1
  end
  return 0
elseif op == 'streak' then
  if ARGV[2] == '1' then return redis.call('HINCRBY', meta, 'st', 1) - 1 end
  return tonumber(redis.call('HGET', meta, 'st') or '0')
elseif op == 'reset' then
  redis.call('HSET', meta, 'st', 0)
  return 0
elseif op == 'fallback' then
  redis.call('HINCRBY', meta, 'fb', 1)
  return 0
end
return redis.error_reply('unknown quota op ' .. op)
