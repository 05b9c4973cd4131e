-- KEYS: meta, ring. ARGV: counter pairs to fold in.
-- Returns {0, seq, admitted_at, now} admitted; {1, until, now} full, cooling or held back;
-- {2, reason} disabled; {3} the record is gone (Redis lost it since it was registered).
-- The hot path, so written for few commands: one HMGET, TIME, one BITFIELD that reads and
-- takes the slot at the head (usually free: the oldest), one HSET.
local meta, ring = KEYS[1], KEYS[2]
local f = redis.call('HMGET', meta, 'limit', 'window', 'inflight', 'head', 'hwm', 'dis', 'q', 'cd')
if not f[1] then return {3} end
fold(meta, 1)
local dis = tonumber(f[6] or '0')
if dis ~= 0 then return {2, dis} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local hwm = tonumber(f[5] or '0')
if now < hwm then now = hwm end
local q, cd = tonumber(f[7] or '0'), tonumber(f[8] or '0')
if now < q then redis.call('HSET', meta, 'hwm', now) return {1, q, now} end
if now < cd then redis.call('HSET', meta, 'hwm', now) return {1, cd, now} end
local limit, window, inflight = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
local head = tonumber(f[4] or '0')
local function take(seq)
  redis.call('BITFIELD', ring, 'SET', 'i64', '#' .. (seq % limit), -now)
  redis.call('HSET', meta, 'head', seq + 1, 'hwm', now)
  return {0, seq, now, now}
end
-- Read and take the head's slot in one command; put the old record back if it was not free
-- (the rare path: the script is atomic, so nobody sees the slot in between).
local slot = '#' .. (head % limit)
local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', slot, 'SET', 'i64', slot, -now)[1])
if now >= blocked_until(v, window, inflight) then
  redis.call('HSET', meta, 'head', head + 1, 'hwm', now)
  return {0, head, now, now}
end
redis.call('BITFIELD', ring, 'SET', 'i64', slot, v)
-- The head's slot is taken: the next slots that may be, in batches; the others are passed
-- by (each record holds its own slot and nothing more), and a refusal looks at each slot once.
local b = blocked_until(v, window, inflight)
if v < 0 and now + window + 1 < b then b = now + window + 1 end
local earliest = b
local i = 1
while i < limit do
  local n = math.min(64, limit - i)
  local args = {}
  for j = 0, n - 1 do
    args[#args + 1] = 'GET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. ((head + i + j) % limit)
  end
  local got = redis.call('BITFIELD', ring, unpack(args))
  for j = 0, n - 1 do
    local w = tonumber(got[j + 1])
    local bu = blocked_until(w, window, inflight)
    if now >= bu then return take(head + i + j) end
    -- An in-flight request is expected to finish now: it frees a window from now at best.
    if w < 0 and now + window + 1 < bu then bu = now + window + 1 end
    if bu < earliest then earliest = bu end
  end
  i = i + n
end
redis.call('HSET', meta, 'hwm', now)
return {1, earliest, now}
