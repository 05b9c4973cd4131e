-- KEYS: meta, ring, token ring. ARGV: admitted_at, rate_seq, prompt tokens (-1: the answer
-- did not say), then the token slots' seqs. Stamps the admission's slots with the server's
-- time now (if they still hold it) and corrects the token reservation to the service's
-- count: slots above it are freed, missing ones taken if free (beyond that the service's own
-- limit answers). The header stays in locals (a table costs more).
local ring, tring = KEYS[2], KEYS[3]
local cr, win, _, ctok, r, _, tk, unit, tslots, infl, _, _, _, _, rh, th, day, cnt, hwm =
  words(ring)
if not cr then return 0 end
local now = clock_above(hwm)
local admitted = tonumber(ARGV[1])
local done = math.max(now, admitted)
-- The rate slot, in the common case a GETRANGE and a SETRANGE: stamped if it still holds this
-- admission (not if it was freed and taken again). Then the high-water mark.
local at = rate_slot(tonumber(ARGV[2]), rate_len(r, cr))
if word_at(ring, at) == -admitted then set_word_at(ring, at, done) end
local tlen = tok_len(ctok, tk, unit, tslots)
if tlen == 0 then
  write_hot(ring, rh, th, day, cnt, now)
  return 1
end
local held = #ARGV - 3
local prompt = tonumber(ARGV[3])
local needed = held
if prompt >= 0 then needed = math.min(math.ceil(prompt / unit), tlen) end
if held > 0 then
  local get = {}
  for i = 1, held do
    get[#get + 1] = 'GET'; get[#get + 1] = 'i64'; get[#get + 1] = '#' .. (tonumber(ARGV[3 + i]) % tlen)
  end
  local got = redis.call('BITFIELD', tring, unpack(get))
  local kept, freed = {}, {}
  for i = 1, held do
    if got[i] == -admitted then
      if i <= needed then kept[#kept + 1] = tonumber(ARGV[3 + i])
      else freed[#freed + 1] = tonumber(ARGV[3 + i]) end
    end
  end
  local args = stamps(stamps({}, 0, kept, tlen, done), 0, freed, tlen, 0)
  if #args > 0 then redis.call('BITFIELD', tring, unpack(args)) end
end
if needed > held then
  local got, _, some = find(tring, 0, th, tlen, needed - held, now, win, infl)
  local extra = got or some
  if #extra > 0 then
    stamp(tring, 0, extra, tlen, done)
    th = extra[#extra] + 1
  end
end
write_hot(ring, rh, th, day, cnt, now)
return 1
