/*
 * reaper: removes containers that no live instance owns.
 *
 * Lists this host's bg-compiler containers and removes those whose
 * instance label names a process that is gone (a crash, a kill -9). A live
 * sibling's containers are left alone: the label carries the pid's start
 * time, so a reused pid does not pass for the old process.
 */
#ifndef BG_REAPER_H
#define BG_REAPER_H

#include "../docker/docker.h"
#include "instance.h"

/*
 * One sweep. With `own` set, this instance's containers go too (used at
 * shutdown, after the workers stopped). *removed gets the count.
 */
int reaper_sweep(struct docker *d, const struct instance *self, int own, int *removed,
                 char err[BG_ERRLEN]);

#endif
