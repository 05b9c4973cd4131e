-- KEYS: meta, ring. ARGV: how many counters, then counter pairs to fold in first.
-- Everything a snapshot shows: {now, limit, window, inflight, tier, cd, cdc, dis, q,
-- in_window, in_flight, fp, c0, c1, ...}; {} when there is no such record.
local meta, ring = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return {} end
fold(meta, 2)
local now = server_now(meta)
local f = redis.call('HMGET', meta, 'limit', 'window', 'inflight', 'tier', 'cd', 'cdc', 'dis', 'q', 'fp')
local limit, window, inflight = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
local in_window, in_flight = 0, 0
for i = 0, limit - 1 do
  local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', '#' .. i)[1])
  if now < blocked_until(v, window, inflight) then
    in_window = in_window + 1
    if v < 0 then in_flight = in_flight + 1 end
  end
end
local out = {now, limit, window, inflight, tonumber(f[4] or '0'), tonumber(f[5] or '0'),
  tonumber(f[6] or '0'), tonumber(f[7] or '0'), tonumber(f[8] or '0'), in_window, in_flight, f[9] or ''}
for c = 0, tonumber(ARGV[1]) - 1 do
  out[#out + 1] = tonumber(redis.call('HGET', meta, 'c' .. c) or '0')
end
return out
