-- KEYS: meta, ring, token ring. ARGV: cr, window, cdaily, ctok, unit, tslots, inflight, tier,
-- group (hex), model, lost (1: the client had registered this record and found it gone),
-- epoch_born.
-- Returns {0, quarantine_until, now}, or {1, cr, window, cdaily, ctok} when the record counts
-- with other limits and still holds live slots (one group and model, one set of limits).
local meta, ring, tring = KEYS[1], KEYS[2], KEYS[3]
local cr, window, cdaily, ctok = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local inflight = tonumber(ARGV[7])
local hold = inflight + window
local h = header(ring)
if h then
  local now = clock(h)
  if h.cr ~= cr or h.win ~= window or h.cdly ~= cdaily or h.ctok ~= ctok then
    local rw = usage(ring, HEADER, rate_len(h.r, h.cr), now, h.win, h.infl)
    local tw = usage(tring, 0, tok_len(h.ctok, h.tk, h.unit, h.tslots), now, h.win, h.infl)
    if rw > 0 or tw > 0 then return {1, h.cr, h.win, h.cdly, h.ctok} end
    -- Nothing of the old windows counts any more: start them afresh; the day's count, the
    -- cooldown, the availability and the clocks carry on.
    redis.call('DEL', ring, tring)
    h.cr, h.win, h.cdly, h.ctok, h.r, h.d, h.tk = cr, window, cdaily, ctok, cr, cdaily, ctok
    h.unit, h.tslots, h.rh, h.th = tonumber(ARGV[5]), tonumber(ARGV[6]), 0, 0
  end
  h.infl = math.max(inflight, h.infl)
  write_header(ring, h)
  return {0, h.q, now}
end
-- A new record. Its absence may mean Redis lost its data (a restart without persistence, a
-- failover): then requests admitted before the loss may still count for up to timeout +
-- window, so the record admits nothing until then. Lost: since now. Otherwise since the
-- generation began (a generation younger than that may follow a loss).
local now = clock_above(0)
local q = 0
if ARGV[11] == '1' then
  q = now + hold
elseif tonumber(ARGV[12]) + hold >= now then
  q = tonumber(ARGV[12]) + hold + 1
end
redis.call('DEL', meta, ring, tring)
write_header(ring, {cr = cr, win = window, cdly = cdaily, ctok = ctok, r = cr, d = cdaily,
  tk = ctok, unit = tonumber(ARGV[5]), tslots = tonumber(ARGV[6]), infl = inflight, cd = 0,
  cdc = 0, un = 0, q = q, rh = 0, th = 0, day = 0, cnt = 0, hwm = now})
redis.call('HSET', meta, 'tier', ARGV[8], 'grp', ARGV[9], 'model', ARGV[10], 'born', now,
  'st', 0, 'fb', 0)
return {0, q, now}
