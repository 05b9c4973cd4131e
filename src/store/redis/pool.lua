-- KEYS: the pool's hash. ARGV: counter pairs to add (field, increment). Returns every field,
-- as HGETALL does.
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return redis.call('HGETALL', KEYS[1])
