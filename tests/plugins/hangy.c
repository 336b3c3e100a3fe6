/*  hangy.c - test provider whose poll () loops until the test lets it go

    The example's job API (docs/plugins.md): plan () reads {"statusUrl"};
    poll () spins until the file <data dir>/hangy.release exists, so the
    broker must kill its provider host; once the file is there, it maps
    {"status": "running" | "done" | other} to RUNNING, DONE or FAILED (a
    test of a broker restart while an op was outstanding releases it).
*/
#include "aq_plugin.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const aq_host_t *host;  //  the host table
    char release[PATH_MAX]; //  the file that lets poll () answer
} s_state_t;

static void *s_open (const aq_host_t *host, const char *config) {
    s_state_t *state = host->alloc (sizeof *state);
    if (state) {
        state->host = host;
        snprintf (state->release, sizeof state->release, "%s/hangy.release", config ? config : ".");
    }
    return state;
}

static void s_close (void **state_p) {
    s_state_t *state = *state_p;
    state->host->free (state);
    *state_p = NULL;
}

static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = ((s_state_t *) state)->host;
    plan->status_url =
        host->url_resolve (initial->url, host->json_get_str (initial->body, "statusUrl"));
    status->state = plan->status_url ? AQ_POLL_RUNNING : AQ_POLL_FAILED;
    if (!plan->status_url)
        host->set_error (&status->error, "hangy submit response has no statusUrl");
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    const s_state_t *self = state;
    while (access (self->release, F_OK) != 0)
        for (volatile int spin = 0; spin < 1000000; spin++) //  busy, as a runaway loop is
            ;
    const char *value = self->host->json_get_str (response->body, "status");
    if (value && strcmp (value, "running") == 0)
        status->state = AQ_POLL_RUNNING;
    else if (value && strcmp (value, "done") == 0)
        status->state = AQ_POLL_DONE;
    else {
        status->state = AQ_POLL_FAILED;
        self->host->set_error (&status->error, "hangy job failed");
    }
    return 0;
}

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .auth_header = "Authorization",
    .plan = s_plan,
    .poll = s_poll,
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "hangy",
    .version = "0.1.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .open = s_open,
    .close = s_close,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
