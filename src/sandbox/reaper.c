#include "reaper.h"

#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "run.h"

int reaper_sweep(struct docker *d, const struct instance *self, int own, int *removed,
                 char err[BG_ERRLEN])
{
    struct docker_container *items = NULL;
    size_t n = 0;
    char filter[256], why[BG_ERRLEN];
    *removed = run_graveyard_sweep(d);
    snprintf(filter, sizeof filter, "%s=%s", LABEL_HOST, self->host);
    int rc = docker_list(d, filter, LABEL_INSTANCE, &items, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *owner = items[i].label;
        int mine = owner && strcmp(owner, self->id) == 0;
        if (mine ? !own : (owner && instance_alive(self, owner)))
            continue;
        if (docker_remove(d, items[i].id, why) < 0) {
            log_warn("reaper: cannot remove %.12s: %s", items[i].id, why);
            continue;
        }
        log_info("reaper: removed container %.12s of %s", items[i].id,
                 owner ? owner : "an unknown instance");
        (*removed)++;
    }
    docker_list_free(items, n);
    return 0;
}
