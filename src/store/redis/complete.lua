-- KEYS: meta, ring, token ring. ARGV: admitted_at, rate_seq, prompt tokens (-1: the answer
-- did not say), then the token slots' seqs. Stamps the admission's slots with the server's
-- time now (if they still hold it) and corrects the token reservation to the service's
-- count: slots above it are freed, missing ones taken if free (beyond that the service's own
-- limit answers).
local ring, tring = KEYS[2], KEYS[3]
local h = header(ring)
if not h then return 0 end
local now = clock(h)
local admitted = tonumber(ARGV[1])
local done = math.max(now, admitted)
-- The rate slot, in the common case one BITFIELD: stamped (reading what it held); put back
-- if it no longer held this admission (freed and taken again). Then the high-water mark.
local slot = '#' .. (HEADER + tonumber(ARGV[2]) % rate_len(h))
local old = redis.call('BITFIELD', ring, 'GET', 'i64', slot, 'SET', 'i64', slot, done)[1]
if old ~= -admitted then redis.call('BITFIELD', ring, 'SET', 'i64', slot, old) end
local tlen = tok_len(h)
if tlen == 0 then
  write_hot(ring, h)
  return 1
end
local held = #ARGV - 3
local prompt = tonumber(ARGV[3])
local needed = held
if prompt >= 0 then needed = math.min(math.ceil(prompt / h.unit), tlen) end
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
  local got, _, some = find(tring, 0, h.th, tlen, needed - held, now, h.win, h.infl)
  local extra = got or some
  if #extra > 0 then
    stamp(tring, 0, extra, tlen, done)
    h.th = extra[#extra] + 1
  end
end
write_hot(ring, h)
return 1
