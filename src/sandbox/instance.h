/*
 * instance: who this service process is, as written on its containers.
 *
 * Every container carries labels naming the service, the host, the pid and
 * the pid's start time (from /proc). The start time tells a live sibling
 * from a dead process whose pid was reused, so the reaper never removes
 * the containers of a live instance.
 */
#ifndef BG_INSTANCE_H
#define BG_INSTANCE_H

#include <sys/types.h>

#define LABEL_SERVICE "org.bg-compiler.service"
#define LABEL_HOST "org.bg-compiler.host"
#define LABEL_INSTANCE "org.bg-compiler.instance" /* "host/pid/start" */

struct instance {
    char host[128];
    pid_t pid;
    unsigned long long start; /* /proc/<pid>/stat field 22, clock ticks */
    char id[192];             /* host/pid/start */
    char name_prefix[64];     /* container names: bg-<pid>-<start> */
    char label_store[3][256];
    const char *labels[4];    /* "key=value", NULL-terminated */
};

int instance_init(struct instance *in);
/* The start time of pid on this host, or 0 when no such process. */
unsigned long long instance_pid_start(pid_t pid);
/* 1 when the instance id names a process alive on this host (itself too). */
int instance_alive(const struct instance *self, const char *id);

#endif
