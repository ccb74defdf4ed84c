-- Language profiles: read once at start (and on SIGHUP), in a sandboxed Lua
-- state, validated strictly. This file stands alone: copy it anywhere and
-- point --languages at it. The format is described in docs/LANGUAGES.md.
--
-- Required: image, file, run. Limits may only lower the server's flags.

language "python" {
  aliases  = {"py", "python3"},
  version  = "3.11",
  image    = "bg-compiler/python:3.11",
  packages = {"python3-minimal"},
  file     = "main.py",
  run      = {"python3", "main.py"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'print("OK")', stdout = "OK\n" },
}

language "c" {
  aliases  = {"gcc"},
  version  = "gcc 12",
  image    = "bg-compiler/c:gcc12",
  packages = {"gcc", "libc6-dev"},
  file     = "main.c",
  compile  = {"gcc", "-O2", "-std=c17", "-o", "main", "main.c", "-lm"},
  run      = {"./main"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  compile_limits = { timeout_ms = 20000 },
  test     = { code = '#include <stdio.h>\nint main(void){puts("OK");return 0;}', stdout = "OK\n" },
}
