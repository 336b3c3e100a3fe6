/*  bad_hosts.c - test provider declaring a host with a path in it: refused */
#include "aq_plugin.h"

static int s_op (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                 aq_provider_status_t *status) {
    return -1;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    return -1;
}

static const char *const s_hosts[] = {"api.example.com", "evil.example/x", NULL};

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .plan = s_op,
    .poll = s_poll,
    .hosts = s_hosts,
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "bad-hosts",
    .version = "0.1.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
