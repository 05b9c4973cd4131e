-- KEYS: meta, rate ring, token ring. Everything a quota snapshot shows: {now, cr, win, cdly,
-- ctok, r, d, tk, unit, day, cnt, cd, cdc, un, fb, tier, rate_in_window, rate_in_flight,
-- token_slots_in_window, group, model}; {} when there is no such record.
local meta, rring, tring = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then return {} end
local now = server_now(meta)
local names = {'cr', 'win', 'cdly', 'ctok', 'r', 'd', 'tk', 'unit', 'day', 'cnt', 'cd', 'cdc',
  'un', 'fb', 'tier', 'tslots', 'infl'}
local f = redis.call('HMGET', meta, unpack(names))
local n = {}
for i = 1, #names do n[i] = tonumber(f[i] or '0') end
local rw, rf = usage(rring, rate_len(n[1], n[5]), now, n[2], n[17])
local tw = usage(tring, tok_len(n[4], n[7], n[8], n[16]), now, n[2], n[17])
local out = {now}
for i = 1, 15 do out[#out + 1] = n[i] end
out[#out + 1] = rw
out[#out + 1] = rf
out[#out + 1] = tw
out[#out + 1] = redis.call('HGET', meta, 'grp') or ''
out[#out + 1] = redis.call('HGET', meta, 'model') or ''
return out
