-- KEYS: meta, rate ring, token ring. ARGV: cr, window, cdaily, ctok, unit, tslots, inflight,
-- tier, group (hex), model, lost (1: the client had registered this record and found it
-- gone), epoch_born.
-- Returns {0, quarantine_until, now}, or {1, cr, window, cdaily, ctok} when the record counts
-- with other limits and still holds live slots (one group and model, one set of limits).
local meta, rring, tring = KEYS[1], KEYS[2], KEYS[3]
local cr, window, cdaily, ctok = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local inflight = tonumber(ARGV[7])
local hold = inflight + window
if redis.call('EXISTS', meta) == 1 then
  local now = server_now(meta)
  local f = redis.call('HMGET', meta, 'cr', 'win', 'cdly', 'ctok', 'r', 'tk', 'unit', 'tslots', 'infl', 'q')
  local n = {}
  for i = 1, 10 do n[i] = tonumber(f[i] or '0') end
  if n[1] ~= cr or n[2] ~= window or n[3] ~= cdaily or n[4] ~= ctok then
    local rw = usage(rring, rate_len(n[1], n[5]), now, n[2], n[9])
    local tw = usage(tring, tok_len(n[4], n[6], n[7], n[8]), now, n[2], n[9])
    if rw > 0 or tw > 0 then return {1, n[1], n[2], n[3], n[4]} end
    -- Nothing of the old windows counts any more: start them afresh; the day's count, the
    -- cooldown and the availability carry on.
    redis.call('DEL', rring, tring)
    redis.call('HSET', meta, 'cr', cr, 'win', window, 'cdly', cdaily, 'ctok', ctok, 'r', cr,
      'd', cdaily, 'tk', ctok, 'unit', ARGV[5], 'tslots', ARGV[6], 'rh', 0, 'th', 0)
  end
  if inflight > n[9] then redis.call('HSET', meta, 'infl', inflight) end
  return {0, n[10], now}
end
-- A new record. Its absence may mean Redis lost its data (a restart without persistence, a
-- failover): then requests admitted before the loss may still count for up to timeout +
-- window, so the record admits nothing until then. Lost: since now. Otherwise since the
-- generation began (a generation younger than that may follow a loss).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local q = 0
if ARGV[11] == '1' then
  q = now + hold
elseif tonumber(ARGV[12]) + hold >= now then
  q = tonumber(ARGV[12]) + hold + 1
end
redis.call('DEL', rring, tring)
redis.call('HSET', meta, 'cr', cr, 'win', window, 'cdly', cdaily, 'ctok', ctok, 'r', cr,
  'd', cdaily, 'tk', ctok, 'unit', ARGV[5], 'tslots', ARGV[6], 'infl', inflight,
  'tier', ARGV[8], 'grp', ARGV[9], 'model', ARGV[10], 'rh', 0, 'th', 0, 'day', 0, 'cnt', 0,
  'q', q, 'born', now, 'hwm', now, 'cd', 0, 'cdc', 0, 'un', 0, 'st', 0, 'fb', 0)
return {0, q, now}
