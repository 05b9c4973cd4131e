-- KEYS: meta, rate ring, token ring. ARGV: the Pacific day, the estimated input tokens.
-- All or nothing on the three quotas: everything is checked before anything is written (the
-- script is atomic, so nobody sees a half admission).
-- Returns {0, now, rate_seq, token_seq...} admitted; {1, until, now} full, cooling or held
-- back; {4, until, now} the model is unavailable for the group; {5, now} the day is spent;
-- {3} the record is gone (Redis lost it since it was registered).
local meta, rring, tring = KEYS[1], KEYS[2], KEYS[3]
local f = redis.call('HMGET', meta, 'cr', 'win', 'ctok', 'r', 'd', 'tk', 'unit', 'tslots',
  'infl', 'rh', 'th', 'day', 'cnt', 'cd', 'un', 'q', 'hwm')
if not f[1] then return {3} end
local n = {}
for i = 1, 17 do n[i] = tonumber(f[i] or '0') end
local cr, window, ctok, r, d, tk, unit, tslots, inflight = n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9]
local rh, th, day, cnt, cd, un, q, hwm = n[10], n[11], n[12], n[13], n[14], n[15], n[16], n[17]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
if now < hwm then now = hwm end
redis.call('HSET', meta, 'hwm', now)
if now < q then return {1, q, now} end
if now < un then return {4, un, now} end
if now < cd then return {1, cd, now} end
local today = tonumber(ARGV[1])
if day ~= today then cnt = 0 end
if d > 0 and cnt >= d then return {5, now} end
local rlen = rate_len(cr, r)
local rseqs, rready = find(rring, rh, rlen, 1, now, window, inflight)
if not rseqs then return {1, rready, now} end
local tseqs = {}
local tokens = tonumber(ARGV[2])
local tlen = tok_len(ctok, tk, unit, tslots)
if tokens > 0 and tlen > 0 then
  local units = clamp(math.ceil(tokens / unit), 1, tlen)
  local ready
  tseqs, ready = find(tring, th, tlen, units, now, window, inflight)
  if not tseqs then return {1, ready, now} end
end
stamp(rring, rseqs, rlen, -now)
stamp(tring, tseqs, tlen, -now)
local out = {0, now, rseqs[1]}
for _, s in ipairs(tseqs) do out[#out + 1] = s end
local newth = th
if #tseqs > 0 then newth = tseqs[#tseqs] + 1 end
redis.call('HSET', meta, 'rh', rseqs[1] + 1, 'th', newth, 'day', today, 'cnt', cnt + 1)
return out
