/*
 * supervisor: getting bg-supervisor into every run container.
 *
 * The binary is built with the service and embedded in it. It is placed
 * once into a named volume whose name carries a hash of its content, so an
 * upgraded service never runs an old supervisor, and the volume is mounted
 * read-only into each run. Filling goes through a throwaway container and
 * the archive endpoint: no host path is shared with the engine, so this
 * works with a remote engine too.
 */
#ifndef BG_SUPERVISOR_H
#define BG_SUPERVISOR_H

#include <stddef.h>

#include "../common/err.h"
#include "../docker/docker.h"

extern const unsigned char bg_supervisor_blob[];
extern const size_t bg_supervisor_blob_len;

/* "bg-supervisor-<16 hex of the content hash>" */
void supervisor_volume_name(const void *blob, size_t len, char out[64]);

/*
 * Make sure the volume holds the binary. `images` lists candidate images
 * for the throwaway container (any present one does; it never starts).
 */
int supervisor_ensure(struct docker *d, const char *volume, const char *const *images,
                      const void *blob, size_t len, char err[BG_ERRLEN]);

#endif
