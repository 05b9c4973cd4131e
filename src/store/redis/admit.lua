-- KEYS: meta, ring (header and rate slots), token ring. ARGV: the Pacific day, the estimated
-- input tokens.
-- All or nothing on the three quotas: everything is checked before anything is kept (the
-- script is atomic, so nobody sees a half admission).
-- Returns {0, now, rate_seq, token_seq...} admitted; {1, until, now} full, cooling or held
-- back; {4, until, now} the model is unavailable for the group; {5, now} the day is spent;
-- {3} the record is gone (Redis lost it since it was registered).
-- The common case costs four commands: TIME, the header's GETRANGE, one BITFIELD that takes
-- the head's slot (reading what it held) and one SETRANGE that moves the head, counts the day
-- and raises the high-water mark; only when the head's slot was not free is it put back and
-- the ring searched.
local ring, tring = KEYS[2], KEYS[3]
local h = header(ring)
if not h then return {3} end
local now = clock(h)
if now < h.q then return {1, h.q, now} end
if now < h.un then return {4, h.un, now} end
if now < h.cd then return {1, h.cd, now} end
local today = tonumber(ARGV[1])
local cnt = h.cnt
if h.day ~= today then cnt = 0 end
if h.d > 0 and cnt >= h.d then return {5, now} end
local tseqs = {}
local tokens = tonumber(ARGV[2])
local tlen = tok_len(h)
if tokens > 0 and tlen > 0 then
  local ready
  tseqs, ready = find(tring, 0, h.th, tlen, clamp(math.ceil(tokens / h.unit), 1, tlen), now,
    h.win, h.infl)
  if not tseqs then return {1, ready, now} end
end
local rlen = rate_len(h)
local seq = h.rh
local slot = '#' .. (HEADER + seq % rlen)
local old = redis.call('BITFIELD', ring, 'GET', 'i64', slot, 'SET', 'i64', slot, -now)[1]
if now < blocked_until(old, h.win, h.infl) then
  -- The head's slot is taken: put it back, and look at the others.
  redis.call('BITFIELD', ring, 'SET', 'i64', slot, old)
  local rseqs, rready = find(ring, HEADER, seq, rlen, 1, now, h.win, h.infl)
  if not rseqs then return {1, rready, now} end
  seq = rseqs[1]
  stamp(ring, HEADER, rseqs, rlen, -now)
end
stamp(tring, 0, tseqs, tlen, -now)
h.rh, h.day, h.cnt = seq + 1, today, cnt + 1
if #tseqs > 0 then h.th = tseqs[#tseqs] + 1 end
write_hot(ring, h)
local out = {0, now, seq}
for _, s in ipairs(tseqs) do out[#out + 1] = s end
return out
