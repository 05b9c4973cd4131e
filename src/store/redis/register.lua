-- KEYS: meta, ring. ARGV: limit, window, inflight, tier, fingerprint, lost (1: the client
-- had registered this record and found it gone), epoch_born.
-- Returns {0, quarantine_until, now}, or {1, limit, window} when the record counts with
-- another quota and still holds live slots (one key, one limit).
local meta, ring = KEYS[1], KEYS[2]
local limit, window, inflight = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local hold = inflight + window
if redis.call('EXISTS', meta) == 1 then
  local now = server_now(meta)
  local f = redis.call('HMGET', meta, 'limit', 'window', 'inflight', 'q')
  local l, w, infl = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
  if l ~= limit or w ~= window then
    for i = 0, l - 1 do
      local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', '#' .. i)[1])
      if now < blocked_until(v, w, infl) then return {1, l, w} end
    end
    -- Nothing of the old quota counts any more: start afresh with the new one.
    redis.call('DEL', ring)
    redis.call('HSET', meta, 'limit', limit, 'window', window, 'head', 0)
  end
  if inflight > infl then redis.call('HSET', meta, 'inflight', inflight) end
  return {0, tonumber(f[4] or '0'), now}
end
-- A new record. Its absence may mean Redis lost its data (a restart without persistence, a
-- failover): then requests admitted before the loss may still count for up to timeout +
-- window, so the record admits nothing until then. Lost: since now. Otherwise since the
-- generation began (a generation younger than that may follow a loss).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local q = 0
if ARGV[6] == '1' then
  q = now + hold
elseif tonumber(ARGV[7]) + hold >= now then
  q = tonumber(ARGV[7]) + hold + 1
end
redis.call('DEL', ring)
redis.call('HSET', meta, 'limit', limit, 'window', window, 'inflight', inflight,
  'tier', ARGV[4], 'fp', ARGV[5], 'head', 0, 'q', q, 'born', now, 'hwm', now,
  'cd', 0, 'cdc', 0, 'dis', 0)
return {0, q, now}
