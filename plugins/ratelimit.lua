-- ratelimit: N requests per S seconds per API key (req.ctx.key_id, set by
-- auth), or per client address without one. A token bucket: a burst of N
-- at once, then one more every S/N seconds. Beyond it: 429 with
-- Retry-After. Every answer carries RateLimit-Limit, RateLimit-Remaining
-- and RateLimit-Reset. Buckets live in the shared store, so they hold
-- across threads, Lua states and reloads.
--
--   BG_RATE_LIMIT="60/60"     or   ratelimit = { limit = 60, period = 60 }
local limit, period

local function init(settings)
  limit, period = settings.limit, settings.period
  local env = bg.env("BG_RATE_LIMIT")
  if env then
    local n, s = env:match("^%s*(%d+)%s*/%s*(%d+)%s*$")
    if not n then error("ratelimit: BG_RATE_LIMIT must look like N/S, e.g. 60/60") end
    limit, period = tonumber(n), tonumber(s)
  end
  limit, period = limit or 60, period or 60
  if limit < 1 or period <= 0 then error("ratelimit: limit and period must be positive") end
end

local function on_request(req)
  local who = req.ctx.key_id and ("key:" .. req.ctx.key_id) or ("addr:" .. (req.client or "?"))
  local ok, remaining, retry = store.take("ratelimit:" .. who, limit, period)
  local h = req.response_headers
  h["RateLimit-Limit"] = tostring(limit)
  h["RateLimit-Remaining"] = tostring(math.floor(remaining))
  -- Seconds until the bucket is full again.
  h["RateLimit-Reset"] = tostring(math.ceil((limit - remaining) * period / limit))
  if ok then return true end
  h["Retry-After"] = tostring(math.max(1, math.ceil(retry)))
  return false, 429, string.format("rate limit of %d requests per %d s exceeded; retry in %d s",
                                   limit, period, math.max(1, math.ceil(retry)))
end

return { name = "ratelimit", init = init, on_request = on_request }
