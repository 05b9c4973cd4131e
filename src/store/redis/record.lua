-- Prepended to every script. A (quota group, model) record is three Redis keys of one hash
-- tag: the ring string `KEYS[2]`, whose first HEADER words (signed 64-bit big-endian, the
-- encoding of BITFIELD's i64) are the header the hot scripts need, then the rate ring's slots;
-- the token ring's string `KEYS[3]`; and the hash `KEYS[1]` with what is read rarely (tier,
-- group, model, streak, fallbacks, birth). One GETRANGE reads the header, one GETRANGE and one
-- SETRANGE take the head's slot, and one SETRANGE moves the head (its fields are the header's
-- last words): an admission is TIME and four of the cheapest commands there are (tokens: one
-- or two more). Each redis.call costs the better part of a microsecond, so the scripts count
-- them, keep the hot words in locals and build no strings they can spell. BITFIELD reads and
-- writes the same words (its i64 at `#n` is bytes 8n to 8n + 7) where many slots are
-- looked at at once.
--
-- The header words, in order (a missing record reads as an empty string):
-- cr, win, cdly, ctok: the configured rate, window (ms), daily and token limits;
-- r, d, tk: the limits in force; unit, tslots: tokens per token slot, token slots;
-- infl: the longest a request may be in flight (ms); cd, cdc: the cooldown's end and cause;
-- un: the end of "unavailable"; q: held back until (after a loss); then what an admission
-- writes: rh, th: the rings' heads; day, cnt: the Pacific day and its count; hwm: the
-- high-water mark.
local FIELDS = {'cr', 'win', 'cdly', 'ctok', 'r', 'd', 'tk', 'unit', 'tslots', 'infl', 'cd',
  'cdc', 'un', 'q', 'rh', 'th', 'day', 'cnt', 'hwm'}
local HEADER = 19
local WORD = '>i8'
local HEADER_FORMAT = '>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8>i8'
-- Where the words an admission writes begin (rh), and their format.
local HOT = 14
local HOT_FORMAT = '>i8>i8>i8>i8>i8'
-- The header of `ring`, its words in the order of FIELDS (then one value to ignore); nothing
-- when there is no record. The hot scripts keep them in locals (cheaper than a table).
local function words(ring)
  local s = redis.call('GETRANGE', ring, 0, 8 * HEADER - 1)
  if #s < 8 * HEADER then return end
  return struct.unpack(HEADER_FORMAT, s)
end
-- The header of `ring`, as a table by field name; nil when there is no record.
local function header(ring)
  local v = {words(ring)}
  if #v == 0 then return nil end
  local h = {}
  for i, field in ipairs(FIELDS) do h[field] = v[i] end
  return h
end
-- Writes the header's fields from `h` (all of them, or from word `from` on).
local function write_header(ring, h, from)
  from = from or 0
  local v = {}
  for i = from + 1, HEADER do v[#v + 1] = h[FIELDS[i]] end
  redis.call('SETRANGE', ring, 8 * from, struct.pack(string.rep(WORD, HEADER - from), unpack(v)))
end
-- Writes what an admission moves: the heads, the day's count, the high-water mark.
local function write_hot(ring, rh, th, day, cnt, hwm)
  redis.call('SETRANGE', ring, 8 * HOT, struct.pack(HOT_FORMAT, rh, th, day, cnt, hwm))
end
-- Where (the byte) the slot of `seq` is in a rate ring of `len` slots.
local function rate_slot(seq, len) return 8 * (HEADER + seq % len) end
-- The word at byte `at` of `ring` (0 past its end, as BITFIELD reads it), and its writing.
local function word_at(ring, at)
  local s = redis.call('GETRANGE', ring, at, at + 7)
  if #s < 8 then return 0 end
  return (struct.unpack(WORD, s))
end
local function set_word_at(ring, at, value)
  redis.call('SETRANGE', ring, at, struct.pack(WORD, value))
end
-- The server's clock in whole milliseconds (rounded up, never 0), never below the record's
-- high-water mark `hwm` (a server clock stepped backwards never frees a slot early); the
-- caller raises the mark to it with what it writes anyway. Read once per script (time runs
-- during a script before Redis 7.2).
local function clock_above(hwm)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
  if now < hwm then return hwm end
  return now
end
-- The same for a header table `h`, whose mark it raises.
local function clock(h)
  h.hwm = clock_above(h.hwm)
  return h.hwm
end
-- Counter increments a client folds into the script it sends anyway: ARGV from `first` on,
-- pairs of (field, increment).
local function fold(meta, first)
  for i = first, #ARGV, 2 do
    redis.call('HINCRBY', meta, ARGV[i], ARGV[i + 1])
  end
end
-- The first time at which a slot holding `v` may be taken again (limiter.rs's rule): 0 free,
-- `t > 0` finished at `t`, `-t` in flight since `t`.
local function blocked_until(v, window, inflight)
  if v == 0 then return 0 end
  if v > 0 then return v + window + 1 end
  return -v + inflight + window + 1
end
local function clamp(n, lo, hi)
  if n < lo then return lo end
  if n > hi then return hi end
  return n
end
-- Looks for `need` slots of a ring (`len` slots from word `base` of `ring`) that are free at
-- `now`, from `head` on, each slot looked at once. Returns the list of their sequence
-- numbers, or nil, the earliest time at which `need` slots would be free, and the free ones.
local function find(ring, base, head, len, need, now, window, inflight)
  local free, busy = {}, {}
  local i = 0
  while i < len do
    local n = math.min(32, len - i)
    local args = {}
    for j = 0, n - 1 do
      args[#args + 1] = 'GET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. (base + (head + i + j) % len)
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
  return nil, busy[need - #free] or busy[#busy] or (now + 1), free
end
-- BITFIELD arguments that write `value` into the slots of `seqs` (a ring of `len` slots from
-- word `base`).
local function stamps(args, base, seqs, len, value)
  for _, s in ipairs(seqs) do
    args[#args + 1] = 'SET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. (base + s % len)
    args[#args + 1] = value
  end
  return args
end
local function stamp(ring, base, seqs, len, value)
  if #seqs == 0 then return end
  redis.call('BITFIELD', ring, unpack(stamps({}, base, seqs, len, value)))
end
-- The slots in force of a record's two rings (lowered limits use the first slots).
local function rate_len(r, cr) return clamp(r, 1, cr) end
local function tok_len(ctok, tk, unit, tslots)
  if ctok == 0 then return 0 end
  return clamp(math.floor(tk / unit), 1, tslots)
end
-- How many slots of a ring (`len` from word `base`) count at `now`, and of those how many
-- are in flight.
local function usage(ring, base, len, now, window, inflight)
  local in_window, in_flight = 0, 0
  local i = 0
  while i < len do
    local n = math.min(256, len - i)
    local args = {}
    for j = 0, n - 1 do
      args[#args + 1] = 'GET'; args[#args + 1] = 'i64'; args[#args + 1] = '#' .. (base + i + j)
    end
    local got = redis.call('BITFIELD', ring, unpack(args))
    for j = 1, n do
      local v = tonumber(got[j])
      if now < blocked_until(v, window, inflight) then
        in_window = in_window + 1
        if v < 0 then in_flight = in_flight + 1 end
      end
    end
    i = i + n
  end
  return in_window, in_flight
end
