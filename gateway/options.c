/*  options.c - the gateway's settings and their defaults */
#include "options.h"

#include <assert.h>

void gw_config_defaults (gw_config_t *cfg) {
    assert (cfg);
    *cfg = (gw_config_t){
        .listen = "127.0.0.1:8080",
        .broker_endpoint = "ipc://data/client.ipc",
        .max_body = 1 << 20,
        .max_connections = 20000,
        .per_ip_connections = 1000,
        .connection_timeout_s = 30,
        .request_deadline_s = 60,
        .verbose = false,
    };
}
