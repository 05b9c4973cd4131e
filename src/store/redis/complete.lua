-- KEYS: meta, rate ring, token ring. ARGV: admitted_at, rate_seq, prompt tokens (-1: the
-- answer did not say), then the token slots' seqs. Stamps the admission's slots with the
-- server's time now (if they still hold it) and corrects the token reservation to the
-- service's count: slots above it are freed, missing ones taken if free (beyond that the
-- service's own limit answers).
local meta, rring, tring = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then return 0 end
local now = server_now(meta)
local f = redis.call('HMGET', meta, 'cr', 'win', 'ctok', 'r', 'tk', 'unit', 'tslots', 'infl', 'th')
local n = {}
for i = 1, 9 do n[i] = tonumber(f[i] or '0') end
local cr, window, ctok, r, tk, unit, tslots, inflight, th = n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9]
local admitted = tonumber(ARGV[1])
local done = math.max(now, admitted)
local function finish(ring, seq, len, value)
  local slot = '#' .. (seq % len)
  local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', slot)[1])
  if v == -admitted then redis.call('BITFIELD', ring, 'SET', 'i64', slot, value) end
end
finish(rring, tonumber(ARGV[2]), rate_len(cr, r), done)
local tlen = tok_len(ctok, tk, unit, tslots)
if tlen == 0 then return 1 end
local held = #ARGV - 3
local prompt = tonumber(ARGV[3])
local needed = held
if prompt >= 0 then needed = math.min(math.ceil(prompt / unit), tlen) end
for i = 1, held do
  if i <= needed then
    finish(tring, tonumber(ARGV[3 + i]), tlen, done)
  else
    finish(tring, tonumber(ARGV[3 + i]), tlen, 0)
  end
end
if needed > held then
  local got = find(tring, th, tlen, tlen, now, window, inflight) or {}
  local extra = {}
  for i = 1, math.min(needed - held, #got) do extra[i] = got[i] end
  if #extra > 0 then
    stamp(tring, extra, tlen, done)
    redis.call('HSET', meta, 'th', extra[#extra] + 1)
  end
end
return 1
