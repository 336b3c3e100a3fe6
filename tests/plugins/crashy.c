/*  crashy.c - test provider that crashes its process (SIGSEGV)

    The example's job API (docs/plugins.md): submit answers {"statusUrl"},
    a status answer {"status": "running" | "done" | "failed" | "crash"}.
    poll () crashes on "crash", and on the third status answer any one
    process reads: so a job that answers "crash" can never be read, and the
    others are read once their provider host is started again.
*/
#include "aq_plugin.h"

#include <signal.h>
#include <string.h>

#define S_CRASH_AT 3 //  the status answer, counted per process, that crashes

static int s_polls; //  status answers this process read

//  Dies of SIGSEGV without a sanitizer's report: the kernel's default action.
static void s_crash (void) {
    signal (SIGSEGV, SIG_DFL);
    raise (SIGSEGV);
}

static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    plan->status_url =
        host->url_resolve (initial->url, host->json_get_str (initial->body, "statusUrl"));
    status->state = plan->status_url ? AQ_POLL_RUNNING : AQ_POLL_FAILED;
    if (!plan->status_url)
        host->set_error (&status->error, "crashy submit response has no statusUrl");
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state;
    const char *value = host->json_get_str (response->body, "status");
    if (++s_polls == S_CRASH_AT || (value && strcmp (value, "crash") == 0))
        s_crash ();
    if (value && strcmp (value, "running") == 0)
        status->state = AQ_POLL_RUNNING;
    else if (value && strcmp (value, "done") == 0)
        status->state = AQ_POLL_DONE;
    else {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "crashy job failed");
    }
    return 0;
}

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .auth_header = "Authorization",
    .plan = s_plan,
    .poll = s_poll,
    .hosts = NULL, //  none: tests add their mock's origin (--provider-origin)
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "crashy",
    .version = "0.1.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
