-- KEYS: meta, ring (header and rate slots), token ring. ARGV: the Pacific day, the estimated
-- input tokens.
-- All or nothing on the three quotas: everything is checked before anything is kept (the
-- script is atomic, so nobody sees a half admission).
-- Returns {0, now, rate_seq, token_seq...} admitted; {1, until, now} full, cooling or held
-- back; {4, until, now} the model is unavailable for the group; {5, now} the day is spent;
-- {3} the record is gone (Redis lost it since it was registered).
-- The common case costs five commands: the header's GETRANGE, TIME, the head's slot read
-- (GETRANGE) and taken (SETRANGE), and one SETRANGE that moves the head, counts the day and
-- raises the high-water mark; only when the head's slot is not free is the ring searched.
-- The header stays in locals (a table costs more).
local ring, tring = KEYS[2], KEYS[3]
local cr, win, _, ctok, r, d, tk, unit, tslots, infl, cd, _, un, q, rh, th, day, cnt, hwm =
  words(ring)
if not cr then return {3} end
local now = clock_above(hwm)
if now < q then return {1, q, now} end
if now < un then return {4, un, now} end
if now < cd then return {1, cd, now} end
local today = tonumber(ARGV[1])
if day ~= today then cnt = 0 end
if d > 0 and cnt >= d then return {5, now} end
local tseqs = {}
local tokens = tonumber(ARGV[2])
local tlen = tok_len(ctok, tk, unit, tslots)
if tokens > 0 and tlen > 0 then
  local ready
  tseqs, ready = find(tring, 0, th, tlen, clamp(math.ceil(tokens / unit), 1, tlen), now, win,
    infl)
  if not tseqs then return {1, ready, now} end
end
local rlen = rate_len(r, cr)
local seq = rh
local at = rate_slot(seq, rlen)
if now < blocked_until(word_at(ring, at), win, infl) then
  -- The head's slot is taken: look at the others.
  local rseqs, rready = find(ring, HEADER, seq, rlen, 1, now, win, infl)
  if not rseqs then return {1, rready, now} end
  seq = rseqs[1]
  at = rate_slot(seq, rlen)
end
set_word_at(ring, at, -now)
stamp(tring, 0, tseqs, tlen, -now)
if #tseqs > 0 then th = tseqs[#tseqs] + 1 end
write_hot(ring, seq + 1, th, today, cnt + 1, now)
local out = {0, now, seq}
for _, s in ipairs(tseqs) do out[#out + 1] = s end
return out
