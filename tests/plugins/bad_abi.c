/*  bad_abi.c - test plugin built for ABI 2: the loader must refuse it */
#include "aq_plugin.h"

static void *s_open (const aq_host_t *host, const char *config) {
    return (void *) host;
}

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI + 1,
    .size = sizeof (aq_plugin_t),
    .name = "bad-abi",
    .version = "2.0.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .open = s_open,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
