#include "instance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"

unsigned long long instance_pid_start(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the last ')'. */
    char *p = strrchr(line, ')');
    if (!p)
        return 0;
    p++;
    /* After ')' come fields 3.. ; starttime is field 22. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

int instance_init(struct instance *in)
{
    memset(in, 0, sizeof *in);
    if (gethostname(in->host, sizeof in->host - 1) < 0)
        snprintf(in->host, sizeof in->host, "unknown");
    in->pid = getpid();
    in->start = instance_pid_start(in->pid);
    if (!in->start)
        return BG_EIO;
    snprintf(in->id, sizeof in->id, "%s/%d/%llu", in->host, (int)in->pid, in->start);
    snprintf(in->name_prefix, sizeof in->name_prefix, "bg-%d-%llu", (int)in->pid, in->start);
    snprintf(in->label_store[0], 256, "%s=bg-compiler", LABEL_SERVICE);
    snprintf(in->label_store[1], 256, "%s=%s", LABEL_HOST, in->host);
    snprintf(in->label_store[2], 256, "%s=%s", LABEL_INSTANCE, in->id);
    for (int i = 0; i < 3; i++)
        in->labels[i] = in->label_store[i];
    in->labels[3] = NULL;
    return 0;
}

int instance_alive(const struct instance *self, const char *id)
{
    char host[128];
    int pid;
    unsigned long long start;
    if (!id || sscanf(id, "%127[^/]/%d/%llu", host, &pid, &start) != 3)
        return 0;
    if (strcmp(host, self->host) != 0)
        return 1; /* another host's: never ours to judge */
    return instance_pid_start(pid) == start;
}
