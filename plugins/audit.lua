-- audit: one JSON line per request: time, request id, key id, client,
-- method, path, language, count, statuses and durations. To stdout, or to
-- the file named by the setting file (or BG_AUDIT_FILE).
--
--   audit = { file = "/var/log/bg-compiler/audit.log" }
local target

local function init(settings)
  target = settings.file or bg.env("BG_AUDIT_FILE") or "stdout"
end

local function line(req, extra)
  local entry = {
    time = bg.time(), request_id = req.request_id, key_id = req.ctx.key_id,
    client = req.client, method = req.method, path = req.path,
    language = req.lang, count = req.count,
  }
  for k, v in pairs(extra) do entry[k] = v end
  bg.append_line(target, bg.json_encode(entry))
end

-- Requests that ran: one line with each run's status and times.
local function on_result(req, results)
  local statuses, durations, cpu = {}, {}, {}
  for i, r in ipairs(results) do
    statuses[i], durations[i], cpu[i] = r.status, r.duration_ms, r.cpu_time_ms
  end
  line(req, { statuses = statuses, duration_ms = durations, cpu_time_ms = cpu })
end

return { name = "audit", init = init, on_result = on_result }
