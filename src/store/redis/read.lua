-- KEYS: meta, ring, token ring. Everything a quota snapshot shows: {now, cr, win, cdly, ctok,
-- r, d, tk, unit, day, cnt, cd, cdc, un, fb, tier, rate_in_window, rate_in_flight,
-- token_slots_in_window, group, model}; {} when there is no such record.
local meta, ring, tring = KEYS[1], KEYS[2], KEYS[3]
local h = header(ring)
if not h then return {} end
local now = clock(h)
write_hot(ring, h.rh, h.th, h.day, h.cnt, h.hwm)
local rw, rf = usage(ring, HEADER, rate_len(h.r, h.cr), now, h.win, h.infl)
local tw = usage(tring, 0, tok_len(h.ctok, h.tk, h.unit, h.tslots), now, h.win, h.infl)
local cold = redis.call('HMGET', meta, 'fb', 'tier', 'grp', 'model')
local out = {now, h.cr, h.win, h.cdly, h.ctok, h.r, h.d, h.tk, h.unit, h.day, h.cnt, h.cd,
  h.cdc, h.un, tonumber(cold[1] or '0'), tonumber(cold[2] or '0'), rw, rf, tw, cold[3] or '',
  cold[4] or ''}
return out
