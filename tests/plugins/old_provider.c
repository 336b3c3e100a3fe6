/*  old_provider.c - test plugin built before `result` was appended

    Its provider table's size ends before `result`, so the host must treat
    that field as absent even though the memory behind it holds a function
    (one that aborts), and use its default instead.
*/
#include "aq_plugin.h"

#include <stdlib.h>

//  Finished at once; the result is at "<url>/result".
static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    plan->status_url = host->strdup (initial->url);
    plan->result_url = host->url_resolve (initial->url, "result");
    status->state = AQ_POLL_DONE;
    status->fetch_result = true;
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    status->state = 42; //  not a state: the host must fail the task, not crash
    return 0;
}

static int s_result (void *state, const aq_provider_plan_t *plan,
                     const aq_http_response_t *response, aq_provider_status_t *status) {
    abort (); //  beyond this table's size: never called
}

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = offsetof (aq_provider_ops_t, result),
    .plan = s_plan,
    .poll = s_poll,
    .result = s_result,
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "old",
    .version = "0.1.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
