-- Language profiles: read once at start (and on SIGHUP), in a sandboxed Lua
-- state, validated strictly. This file stands alone: copy it anywhere and
-- point --languages at it. The format is described in docs/LANGUAGES.md.
--
-- Required: image, file, run. Limits may only lower the server's flags
-- (memory_mb, timeout_ms, output_kb); pids, nofile and tmpfs_mb replace the
-- service's defaults (64 pids, 256 files, 64 MB of tmpfs).
--
-- The sandbox every profile must live with:
--   * the root filesystem is read-only;
--   * /work is the workspace and current directory (tmpfs, exec allowed,
--     owned by uid 65534, HOME=/work);
--   * /tmp is a tmpfs with noexec (TMPDIR=/tmp): caches go there, nothing
--     may need to be executed from it;
--   * non-hidden files in /work may be carried from the compile step to the
--     runs, so compilers' caches and scratch files belong in /tmp, never in
--     /work;
--   * there is no network: nothing may try to download anything;
--   * one container serves the compile step and the runs, so it gets the
--     larger of `limits` and `compile_limits`; tmpfs pages count against the
--     memory limit.
--
-- Images are built from Debian bookworm packages (`scripts/build-images`,
-- always --no-install-recommends) on a shared debootstrap minbase root.

language "python" {
  aliases  = {"py", "python3"},
  version  = "3.11",
  image    = "bg-compiler/python:3.11",
  packages = {"python3-minimal"},
  file     = "main.py",
  run      = {"python3", "{main}"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'print("OK")', stdout = "OK\n" },
}

-- Node.js 18 (Debian's nodejs). V8's default heap size does not follow the
-- container's limit, so the old space is capped below it: a greedy program
-- gets a JavaScript "heap out of memory" error instead of an OOM kill.
language "javascript" {
  aliases  = {"js", "node", "nodejs"},
  version  = "node 18",
  image    = "bg-compiler/javascript:node18",
  packages = {"nodejs"},
  file     = "main.js",
  run      = {"node", "{main}"},
  env      = { NODE_OPTIONS = "--max-old-space-size=192" },
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'console.log("OK")', stdout = "OK\n" },
}

-- TypeScript 4.8 (Debian's node-typescript) checked and compiled by tsc, then
-- run by Node.js 18 (images come from Debian packages only, never from npm).
-- Node's own types come with Debian's nodejs package in /usr/share/nodejs/@types;
-- no DOM library (--lib es2022). A type error is a compile error. tsc needs
-- 2.5-4 s and ~150 MB even for a one-liner; larger semi-spaces save ~1 s of
-- GC. The main file must be main.ts (the run is `node main.js`); other .ts
-- files of the request are compiled alongside.
language "typescript" {
  aliases  = {"ts", "tsc"},
  version  = "typescript 4.8 (node 18)",
  image    = "bg-compiler/typescript:4.8",
  packages = {"nodejs", "node-typescript"},
  file     = "main.ts",
  compile  = {"tsc", "--pretty", "false", "--target", "es2022", "--lib", "es2022",
              "--module", "commonjs", "--skipLibCheck", "--typeRoots", "/usr/share/nodejs/@types",
              "--types", "node", "--outDir", ".", "{files:ts}"},
  run      = {"node", "main.js"},
  env      = { NODE_OPTIONS = "--max-old-space-size=192 --max-semi-space-size=16" },
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  compile_limits = { timeout_ms = 30000, memory_mb = 384 },
  test     = { code = 'const s: string = "OK";\nconsole.log(s);', stdout = "OK\n" },
}

language "c" {
  aliases  = {"gcc"},
  version  = "gcc 12",
  image    = "bg-compiler/c:gcc12",
  packages = {"gcc", "libc6-dev"},
  file     = "main.c",
  compile  = {"gcc", "-O2", "-std=c17", "-o", "main", "{files:c}", "-lm"},
  run      = {"./main"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  compile_limits = { timeout_ms = 20000 },
  test     = { code = '#include <stdio.h>\nint main(void){puts("OK");return 0;}', stdout = "OK\n" },
}

-- g++ may need a few hundred MB for template-heavy code (<bits/stdc++.h>).
language "cpp" {
  aliases  = {"c++", "g++", "cxx"},
  version  = "g++ 12",
  image    = "bg-compiler/cpp:gcc12",
  packages = {"g++"},
  file     = "main.cpp",
  compile  = {"g++", "-O2", "-std=c++20", "-o", "main", "{files:cpp}", "{files:cc}", "{files:cxx}"},
  run      = {"./main"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  compile_limits = { timeout_ms = 30000, memory_mb = 512 },
  test     = { code = '#include <iostream>\nint main(){std::cout << "OK" << std::endl;}', stdout = "OK\n" },
}

-- Go 1.19. `go build` of the request's .go files in GOPATH mode
-- (GO111MODULE=off): no go.mod, no module download (GOPROXY=off in case;
-- GOTOOLCHAIN=local for newer go commands). The build cache lives in /tmp: go
-- build writes its scratch files to TMPDIR but never runs anything from there.
-- CGO_ENABLED stays 1 although the image has no C compiler: Debian ships the
-- standard library precompiled with cgo on, so a program importing net/http
-- builds in under 1 s and 64 KB of cache; with CGO_ENABLED=0, net, crypto/...
-- are stale and rebuilt on every request (9 s, 240 MB, 16 MB of /tmp). The
-- program is then linked against the image's libc; only `import "C"` fails
-- ("C compiler "gcc" not found"). go build runs several compiler processes,
-- each with a thread per CPU plus helpers, so it needs more pids than the
-- default 64 and a few hundred MB; GOMAXPROCS bounds the threads on big hosts
-- (the program's too).
language "go" {
  aliases  = {"golang"},
  version  = "go 1.19",
  image    = "bg-compiler/go:1.19",
  packages = {"golang-go"},
  file     = "main.go",
  compile  = {"go", "build", "-o", "main", "{files:go}"},
  run      = {"./main"},
  env      = {
    GO111MODULE = "off", GOPROXY = "off", GOTOOLCHAIN = "local",
    CGO_ENABLED = "1", GOCACHE = "/tmp/go-cache", GOPATH = "/tmp/go",
    GOENV = "off", XDG_CACHE_HOME = "/tmp/.cache", GOMAXPROCS = "2",
  },
  limits   = { timeout_ms = 10000, memory_mb = 256, pids = 128 },
  compile_limits = { timeout_ms = 30000, memory_mb = 512, pids = 128 },
  test     = { code = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("OK")\n}\n', stdout = "OK\n" },
}

-- Rust 1.63 (Debian's rustc; it links with gcc). No cargo: one crate, no
-- dependencies; the main file is the crate root and `mod x;` finds x.rs.
-- rustc needs 100-400 MB and runs codegen threads. strip=debuginfo drops the
-- standard library's debug information: 0.5 MB instead of 12 MB in /work.
language "rust" {
  aliases  = {"rs", "rustc"},
  version  = "rustc 1.63",
  image    = "bg-compiler/rust:1.63",
  packages = {"rustc"},
  file     = "main.rs",
  compile  = {"rustc", "--edition", "2021", "-C", "opt-level=2", "-C", "strip=debuginfo",
              "-o", "main", "{main}"},
  run      = {"./main"},
  env      = { CARGO_HOME = "/tmp/cargo", XDG_CACHE_HOME = "/tmp/.cache" },
  limits   = { timeout_ms = 10000, memory_mb = 256, pids = 128 },
  compile_limits = { timeout_ms = 30000, memory_mb = 512, pids = 128 },
  test     = { code = 'fn main() {\n    println!("OK");\n}\n', stdout = "OK\n" },
}

-- OpenJDK 17. The main class must be `public class Main` in Main.java. The JVM
-- starts a dozen threads or more (GC, JIT compilers, signal, finalizer...) and
-- reserves memory generously: the serial GC, a bounded processor count, no
-- perf-data file in /tmp and a heap of 50% (javac) or 70% (java: a 200 MB
-- array fits) of the container's limit keep both inside 512 MB and 128 pids;
-- C1 only (TieredStopAtLevel=1) makes javac start fast, while programs keep
-- the full JIT; -Xss64m allows deep recursion. The options are given on the
-- command line, not in JAVA_TOOL_OPTIONS, which would print "Picked up ..."
-- on every run's stderr.
language "java" {
  aliases  = {"jdk", "openjdk"},
  version  = "openjdk 17",
  image    = "bg-compiler/java:17",
  packages = {"openjdk-17-jdk-headless"},
  file     = "Main.java",
  compile  = {"javac", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData",
              "-J-XX:ActiveProcessorCount=2", "-J-XX:MaxRAMPercentage=50",
              "-encoding", "UTF-8", "-d", ".", "{files:java}"},
  run      = {"java", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-XX:ActiveProcessorCount=2",
              "-XX:MaxRAMPercentage=70", "-Xss64m", "-cp", ".", "Main"},
  limits   = { timeout_ms = 10000, memory_mb = 512, pids = 128 },
  compile_limits = { timeout_ms = 30000, memory_mb = 512, pids = 128 },
  test     = { code = 'public class Main {\n    public static void main(String[] args) {\n        System.out.println("OK");\n    }\n}\n', stdout = "OK\n" },
}

-- bash is in every image (the debootstrap base); the package is listed so the
-- image gets built (an image without packages must exist already).
language "bash" {
  aliases  = {"sh", "shell"},
  version  = "bash 5.2",
  image    = "bg-compiler/bash:5.2",
  packages = {"bash"},
  file     = "main.sh",
  run      = {"bash", "{main}"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'echo OK', stdout = "OK\n" },
}

language "lua" {
  aliases  = {"lua5.4"},
  version  = "5.4",
  image    = "bg-compiler/lua:5.4",
  packages = {"lua5.4"},
  file     = "main.lua",
  run      = {"lua5.4", "{main}"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'print("OK")', stdout = "OK\n" },
}

language "ruby" {
  aliases  = {"rb"},
  version  = "3.1",
  image    = "bg-compiler/ruby:3.1",
  packages = {"ruby"},
  file     = "main.rb",
  run      = {"ruby", "{main}"},
  env      = { XDG_CACHE_HOME = "/tmp/.cache", GEM_HOME = "/tmp/gems" },
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'puts "OK"', stdout = "OK\n" },
}

-- perl-base (in every image) lacks most of the standard library; `perl` has it.
language "perl" {
  aliases  = {"pl", "perl5"},
  version  = "5.36",
  image    = "bg-compiler/perl:5.36",
  packages = {"perl"},
  file     = "main.pl",
  run      = {"perl", "{main}"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = 'print "OK\\n";', stdout = "OK\n" },
}

language "php" {
  aliases  = {"php8"},
  version  = "8.2",
  image    = "bg-compiler/php:8.2",
  packages = {"php-cli"},
  file     = "main.php",
  run      = {"php", "{main}"},
  limits   = { timeout_ms = 10000, memory_mb = 256 },
  test     = { code = '<?php\necho "OK\\n";\n', stdout = "OK\n" },
}
