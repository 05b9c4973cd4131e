-- KEYS: meta, ring. ARGV: seq, admitted_at, then counter pairs to fold in.
-- Stamps the slot with the server's time now, if it still holds this admission.
local meta, ring = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return 0 end
fold(meta, 3)
local now = server_now(meta)
local seq, admitted = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit = tonumber(redis.call('HGET', meta, 'limit'))
local slot = '#' .. (seq % limit)
local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', slot)[1])
if v == -admitted then
  redis.call('BITFIELD', ring, 'SET', 'i64', slot, math.max(now, admitted))
  return 1
end
return 0
