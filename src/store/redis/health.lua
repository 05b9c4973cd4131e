-- KEYS: meta. ARGV: op, then its arguments. The rare writes of a key's health:
--   cool, delta_ms, cause: cool down until now + delta, unless it already cools longer;
--   disable, reason: the first reason recorded stays;
--   enable: back into service, cooldown ended; returns the reason it was disabled (0: none).
local meta, op = KEYS[1], ARGV[1]
if redis.call('EXISTS', meta) == 0 then return -1 end
if op == 'cool' then
  local now = server_now(meta)
  local untl = now + tonumber(ARGV[2])
  if untl > tonumber(redis.call('HGET', meta, 'cd') or '0') then
    redis.call('HSET', meta, 'cd', untl, 'cdc', ARGV[3])
  end
  return 0
elseif op == 'disable' then
  if tonumber(redis.call('HGET', meta, 'dis') or '0') == 0 then
    redis.call('HSET', meta, 'dis', ARGV[2])
  end
  return 0
elseif op == 'enable' then
  local was = tonumber(redis.call('HGET', meta, 'dis') or '0')
  redis.call('HSET', meta, 'dis', 0, 'cd', 0)
  return was
end
return redis.error_reply('unknown health op ' .. op)
