/*
 * script: the only unit that sees Lua.
 *
 * Reads operator files (language profiles, settings) in a sandboxed Lua
 * state: text chunks only, no io/os/package/debug/load, reading an
 * undefined global is an error, and a memory cap and an instruction budget
 * so a broken file cannot hang or exhaust the service. What it reads is
 * validated strictly (unknown key, wrong type, missing field: an error with
 * file, line and profile) and handed back as plain C data.
 */
#ifndef BG_SCRIPT_H
#define BG_SCRIPT_H

#include "../common/err.h"
#include "../core/config.h"
#include "../core/profile.h"

/* Load lua/languages.lua (or another file): a new set with one reference. */
int script_load_languages(const char *path, struct profile_set **out, char err[BG_ERRLEN]);

/*
 * Load a settings file: each global it sets names a long flag ("workers",
 * "max_count" or "max-count") or is `allow_images`; values go through
 * config_set. Unknown names are errors.
 */
int script_load_config(const char *path, struct config *cfg, char err[BG_ERRLEN]);

#endif
