-- Prepended to every script that reads time. The server's clock in whole milliseconds
-- (rounded up, never 0), never below the record's high-water mark: a server clock stepped
-- backwards never frees a slot early. Read once per script (time runs during a script
-- before Redis 7.2).
local function server_now(meta)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
  local hwm = tonumber(redis.call('HGET', meta, 'hwm') or '0')
  if now < hwm then now = hwm end
  redis.call('HSET', meta, 'hwm', now)
  return now
end
-- Counter increments a client folds into the script it sends anyway: ARGV from `first` on,
-- pairs of (field, increment).
local function fold(meta, first)
  for i = first, #ARGV, 2 do
    redis.call('HINCRBY', meta, ARGV[i], ARGV[i + 1])
  end
end
-- The first time at which a slot holding `v` may be taken again (limiter.rs's rule).
local function blocked_until(v, window, inflight)
  if v == 0 then return 0 end
  if v > 0 then return v + window + 1 end
  return -v + inflight + window + 1
end
-- The slots of a ring in force: `conf` configured, `in_force` the limit now (lowered ones use
-- the first slots).
local function clamp(n, lo, hi)
  if n < lo then return lo end
  if n > hi then return hi end
  return n
end
-- Looks for `need` slots of `ring` (`len` of them) that are free at `now`, from `head` on,
-- each slot looked at once. Returns the list of their sequence numbers, or nil and the
-- earliest time at which `need` slots would be free.
local function find(ring, head, len, need, now, window, inflight)
  local free, busy = {}, {}
  local i = 0
  while i < len do
    local n = math.min(32, len - i)
    local args = {}
    for j = 0, n - 1 do
      args[#args + 1] = 'GET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. ((head + i + j) % len)
    end
    local got = redis.call('BITFIELD', ring, unpack(args))
    for j = 0, n - 1 do
      local w = tonumber(got[j + 1])
      local bu = blocked_until(w, window, inflight)
      if now >= bu then
        free[#free + 1] = head + i + j
        if #free >= need then return free end
      else
        -- An in-flight request is expected to finish now: it frees a window from now at best.
        if w < 0 and now + window + 1 < bu then bu = now + window + 1 end
        busy[#busy + 1] = bu
      end
    end
    i = i + n
  end
  table.sort(busy)
  return nil, busy[need - #free] or busy[#busy] or (now + 1)
end
-- Writes `value` into the slots of `seqs`.
local function stamp(ring, seqs, len, value)
  if #seqs == 0 then return end
  local args = {}
  for _, s in ipairs(seqs) do
    args[#args + 1] = 'SET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. (s % len); args[#args + 1] = value
  end
  redis.call('BITFIELD', ring, unpack(args))
end
-- The slots in force of a record's two rings, from its fields (cr, r, ctok, tk, unit, tslots).
local function rate_len(cr, r) return clamp(r, 1, cr) end
local function tok_len(ctok, tk, unit, tslots)
  if ctok == 0 then return 0 end
  return clamp(math.floor(tk / unit), 1, tslots)
end
-- How many slots of `ring` (`len`) count at `now`, and of those how many are in flight.
local function usage(ring, len, now, window, inflight)
  local in_window, in_flight = 0, 0
  for i = 0, len - 1 do
    local v = tonumber(redis.call('BITFIELD', ring, 'GET', 'i64', '#' .. i)[1])
    if now < blocked_until(v, window, inflight) then
      in_window = in_window + 1
      if v < 0 then in_flight = in_flight + 1 end
    end
  end
  return in_window, in_flight
end
