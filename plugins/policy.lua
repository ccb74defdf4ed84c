-- policy: per-key tiers. Each tier lists the languages it may use (or "*"),
-- its largest count and its highest limits; requests above a tier's limits
-- are lowered to them, languages outside it are refused with 403. The key
-- comes from auth (req.ctx.key_id); requests without a key get the
-- "default" tier.
--
--   policy = {
--     tiers = {
--       default = { languages = {"python"}, max_count = 1, timeout_ms = 2000 },
--       pro     = { languages = {"*"}, max_count = 10 },
--     },
--     keys = { alice = "pro" },     -- key id -> tier
--   }
local tiers, keys = {}, {}

local function init(settings)
  tiers = settings.tiers or { default = { languages = { "*" } } }
  keys = settings.keys or {}
  for name, tier in pairs(tiers) do
    if type(tier) ~= "table" then error("policy: tier " .. name .. " must be a table") end
  end
  if not tiers.default then error("policy: a 'default' tier is required") end
end

local function allows(tier, lang)
  for _, l in ipairs(tier.languages or { "*" }) do
    if l == "*" or l == lang then return true end
  end
  return false
end

local function lower(t, key, max)
  if max and t[key] and t[key] > max then t[key] = max end
end

local function on_request(req)
  local name = keys[req.ctx.key_id or ""] or "default"
  local tier = tiers[name] or tiers.default
  req.ctx.tier = name
  if not req.lang then return true end -- not a run: nothing to limit
  if not allows(tier, req.lang) then
    return false, 403, "language " .. req.lang .. " is not in your plan (" .. name .. ")"
  end
  if tier.max_count and req.count > tier.max_count then
    return false, 403, string.format("count %d is over your plan's %d", req.count, tier.max_count)
  end
  lower(req.limits, "timeout_ms", tier.timeout_ms)
  lower(req.limits, "memory_mb", tier.memory_mb)
  lower(req.limits, "output_kb", tier.output_kb)
  return true
end

return { name = "policy", init = init, on_request = on_request }
