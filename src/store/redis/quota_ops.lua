-- KEYS: a quota record's meta and ring. ARGV: op, then its arguments. The rare writes:
--   cool, delta_ms, cause: cool down until now + delta, unless it already cools longer;
--   unavailable, delta_ms: the model is not on the group's tier until now + delta (later wins);
--   lower, field (r, d or tk), value: lowers a limit in force (never raises it, never below 1);
--     returns 1 if lowered;
--   streak, bump (0 or 1): returns the capacity streak before the bump;
--   reset: ends the streak; fallback: counts a call served as a fallback.
-- Returns -1 when there is no such record.
local meta, ring, op = KEYS[1], KEYS[2], ARGV[1]
local h = header(ring)
if not h then return -1 end
if op == 'cool' then
  local untl = clock(h) + tonumber(ARGV[2])
  if untl > h.cd then h.cd, h.cdc = untl, tonumber(ARGV[3]) end
  write_header(ring, h)
  return 0
elseif op == 'unavailable' then
  local untl = clock(h) + tonumber(ARGV[2])
  if untl > h.un then h.un = untl end
  write_header(ring, h)
  return 0
elseif op == 'lower' then
  local field, v = ARGV[2], math.max(1, tonumber(ARGV[3]))
  if field ~= 'r' and field ~= 'd' and field ~= 'tk' then
    return redis.error_reply('a limit in force is r, d or tk, not ' .. field)
  end
  if v < h[field] then
    h[field] = v
    write_header(ring, h)
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
