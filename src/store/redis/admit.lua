-- KEYS: meta, ring. ARGV: counter pairs to fold in.
-- Returns {0, seq, admitted_at, now} admitted; {1, until, now} full, cooling or held back;
-- {2, reason} disabled; {3} the record is gone (Redis lost it since it was registered).
local meta, ring = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return {3} end
fold(meta, 1)
local f = redis.call('HMGET', meta, 'dis', 'q', 'cd', 'limit', 'window', 'inflight', 'head')
local dis = tonumber(f[1] or '0')
if dis ~= 0 then return {2, dis} end
local now = server_now(meta)
local q, cd = tonumber(f[2] or '0'), tonumber(f[3] or '0')
if now < q then return {1, q, now} end
if now < cd then return {1, cd, now} end
local limit, window, inflight = tonumber(f[4]), tonumber(f[5]), tonumber(f[6])
local head = tonumber(f[7] or '0')
-- From the head on, the first slot that may be taken; the others are passed by (each record
-- holds its own slot and nothing more), and a refusal looks at each slot once.
local earliest = nil
local batch = 64
local i = 0
while i < limit do
  local n = math.min(batch, limit - i)
  local args = {}
  for j = 0, n - 1 do
    args[#args + 1] = 'GET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. ((head + i + j) % limit)
  end
  local got = redis.call('BITFIELD', ring, unpack(args))
  for j = 0, n - 1 do
    local v = tonumber(got[j + 1])
    local b = blocked_until(v, window, inflight)
    if now >= b then
      local seq = head + i + j
      redis.call('BITFIELD', ring, 'SET', 'i64', '#' .. (seq % limit), -now)
      redis.call('HSET', meta, 'head', seq + 1)
      return {0, seq, now, now}
    end
    -- An in-flight request is expected to finish now: it frees a window from now at best.
    if v < 0 and now + window + 1 < b then b = now + window + 1 end
    if earliest == nil or b < earliest then earliest = b end
  end
  i = i + n
end
return {1, earliest, now}
