/*
 * tar: the smallest ustar writer that the engine's archive endpoint takes.
 * Regular files only, names under 100 bytes.
 */
#ifndef BG_TAR_H
#define BG_TAR_H

#include <stddef.h>

#include "../common/buf.h"

int tar_add_file(struct buf *out, const char *name, unsigned mode, const void *data, size_t len);
/* The two zero blocks that end an archive. */
int tar_finish(struct buf *out);

#endif
