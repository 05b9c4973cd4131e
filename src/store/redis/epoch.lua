-- KEYS: the generation marker. Returns {born, now}: when this Redis began its generation
-- (set now if the marker is missing: a new Redis, or one that lost its data).
local now = clock_above(0)
redis.call('SET', KEYS[1], now, 'NX')
return {tonumber(redis.call('GET', KEYS[1])), now}
