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
