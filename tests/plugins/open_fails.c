/*  open_fails.c - test plugin whose open refuses: skipped with a log line */
#include "aq_plugin.h"

static void *s_open (const aq_host_t *host, const char *config) {
    host->log (AQ_PLUGIN_LOG_ERROR, "refusing to open, as the test asks");
    return NULL;
}

static int s_seal (void *state, const char *team, const char *token_id, const uint8_t *value,
                   size_t len, uint8_t **out, size_t *out_len) {
    return -1;
}

static int s_open_value (void *state, const char *team, const char *token_id, const uint8_t *sealed,
                         size_t len, uint8_t **out, size_t *out_len) {
    return -1;
}

static const aq_vault_ops_t s_ops = {
    .abi = AQ_VAULT_ABI,
    .size = sizeof (aq_vault_ops_t),
    .seal = s_seal,
    .open = s_open_value,
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "open-fails",
    .version = "0.0.0",
    .kind = AQ_PLUGIN_VAULT,
    .open = s_open,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
