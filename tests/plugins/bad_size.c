/*  bad_size.c - test plugin whose descriptor is too small: refused */
#include "aq_plugin.h"

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = 8, //  only {abi, size}
    .name = "bad-size",
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
