-- auth: API keys. A request needs "Authorization: Bearer <key>".
--
-- Keys come from BG_API_KEYS (comma-separated) and/or a keys file named by
-- the setting keys_file (or BG_API_KEYS_FILE): one key per line, optionally
-- "id:key"; blank lines and lines starting with # are ignored. A key's id
-- (its name in the file, else "key1", "key2", ... in order) goes to
-- req.ctx.key_id for the plugins after this one. Keys are compared in
-- constant time and never logged.
--
--   settings:  auth = { keys_file = "/etc/bg-compiler/keys" }
local keys = {}

local function add(id, key)
  if key ~= "" then keys[#keys + 1] = { id = id, key = key } end
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function load_file(path)
  local text, err = bg.read_file(path)
  if not text then error("auth: cannot read keys file " .. err) end
  for line in text:gmatch("[^\n]+") do
    line = trim(line)
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local id, key = line:match("^([%w_.-]+):(.+)$")
      add(id or ("key" .. (#keys + 1)), key or line)
    end
  end
end

local function init(settings)
  local env = bg.env("BG_API_KEYS")
  if env then
    for key in env:gmatch("[^,]+") do add("key" .. (#keys + 1), trim(key)) end
  end
  local file = settings.keys_file or bg.env("BG_API_KEYS_FILE")
  if file then load_file(file) end
  if #keys == 0 then
    error("auth: no API keys: set BG_API_KEYS or auth = { keys_file = ... }")
  end
  bg.log("info", "auth: " .. #keys .. " key(s) loaded")
end

local function on_request(req)
  local header = req.headers["authorization"] or ""
  local given = header:match("^[Bb]earer%s+(%S+)%s*$")
  if given then
    -- Every key is compared, match or not, so timing tells nothing.
    local found
    for _, k in ipairs(keys) do
      if bg.secure_equal(given, k.key) and not found then found = k end
    end
    if found then
      req.ctx.key_id = found.id
      return true
    end
  end
  req.response_headers["WWW-Authenticate"] = 'Bearer realm="bg-compiler"'
  if given then return false, 401, "the API key is not valid" end
  return false, 401, "an API key is required: Authorization: Bearer <key>"
end

return { name = "auth", init = init, on_request = on_request }
