/*  config.c - the broker's settings: defaults, options, and their check */
#include "config.h"
#include "loader.h"
#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *bk_config_sockets (const bk_config_t *cfg, bk_sockets_config_t *out) {
    char *clients = NULL;
    const char *extra = cfg->client_endpoints;
    if (asprintf (&clients, "ipc://%s/client.ipc%s%s", cfg->data_dir ? cfg->data_dir : ".",
                  extra && *extra ? "," : "", extra && *extra ? extra : "") < 0)
        clients = NULL;
    assert (clients);
    *out =
        (bk_sockets_config_t){.endpoints = {clients, cfg->worker_endpoints, cfg->event_endpoints},
                              .cert = cfg->cert,
                              .allow_clients = cfg->allow_clients,
                              .allow_workers = cfg->allow_workers,
                              .insecure = cfg->insecure};
    return clients;
}

void bk_config_defaults (bk_config_t *cfg) {
    memset (cfg, 0, sizeof *cfg);
    cfg->backoff_base_ms = 1000;
    cfg->backoff_cap_ms = 3600000;
    cfg->heartbeat_ms = 1000;
    cfg->heartbeat_liveness = 5;
    cfg->max_body = 65536;
    cfg->map_size = 1LL << 30;
    cfg->checkpoint_ms = BK_STORE_CHECKPOINT_MS;
    cfg->poll_interval_ms = 2000;
    cfg->provider_timeout_ms = 5000;
}

bool bk_config_option (bk_config_t *cfg, const char *name, const char *value) {
    if (strcmp (name, "--data") == 0)
        cfg->data_dir = value;
    else if (strcmp (name, "--events") == 0)
        cfg->event_endpoints = strcmp (value, "none") == 0 ? NULL : value;
    else if (strcmp (name, "--backoff-base-ms") == 0)
        cfg->backoff_base_ms = atoll (value);
    else if (strcmp (name, "--backoff-cap-ms") == 0)
        cfg->backoff_cap_ms = atoll (value);
    else if (strcmp (name, "--heartbeat-ms") == 0)
        cfg->heartbeat_ms = atoi (value);
    else if (strcmp (name, "--max-response-body") == 0)
        cfg->max_body = atoi (value);
    else if (strcmp (name, "--rate-limit") == 0)
        cfg->rate_limit_rps = atof (value);
    else if (strcmp (name, "--rate-burst") == 0)
        cfg->rate_limit_burst = atof (value);
    else if (strcmp (name, "--poll-interval-ms") == 0)
        cfg->poll_interval_ms = atoll (value);
    else if (strcmp (name, "--plugins") == 0)
        cfg->plugin_dir = value;
    else if (strcmp (name, "--map-size") == 0)
        cfg->map_size = atoll (value);
    else if (strcmp (name, "--checkpoint-ms") == 0)
        cfg->checkpoint_ms = atoll (value);
    else if (strcmp (name, "--cert") == 0)
        cfg->cert = value;
    else if (strcmp (name, "--allow-clients") == 0)
        cfg->allow_clients = value;
    else if (strcmp (name, "--allow-workers") == 0)
        cfg->allow_workers = value;
    else if (strcmp (name, "--provider-timeout-ms") == 0)
        cfg->provider_timeout_ms = atoll (value);
    else if (strcmp (name, "--provider-origin") == 0) {
        if (cfg->provider_origin_count < BK_PROVIDER_ORIGINS)
            cfg->provider_origins[cfg->provider_origin_count] = value;
        cfg->provider_origin_count++;
    } else
        return false;
    return true;
}

const char *bk_config_check (const bk_config_t *cfg) {
    if (!cfg->data_dir || !*cfg->data_dir)
        return "--data DIR is required";
    if (cfg->heartbeat_ms < 10)
        return "--heartbeat-ms must be at least 10";
    if (cfg->backoff_base_ms < 1 || cfg->backoff_cap_ms < cfg->backoff_base_ms)
        return "--backoff-base-ms must be at least 1 and at most --backoff-cap-ms";
    if (cfg->max_body < 0 || cfg->poll_interval_ms < 1 || cfg->rate_limit_rps < 0)
        return "--max-response-body, --poll-interval-ms and --rate-limit must be positive";
    if (cfg->checkpoint_ms < 1 || cfg->checkpoint_ms > 3600000)
        return "--checkpoint-ms must be 1 to 3600000";
    if (cfg->provider_timeout_ms < 100 || cfg->provider_timeout_ms > 600000)
        return "--provider-timeout-ms must be 100 to 600000";
    if (cfg->provider_origin_count > BK_PROVIDER_ORIGINS)
        return "--provider-origin may be given at most 16 times";
    for (int i = 0; i < cfg->provider_origin_count; i++) {
        const char *eq = strchr (cfg->provider_origins[i], '=');
        if (!eq || eq == cfg->provider_origins[i] || !aq_plugin_origin_valid (eq + 1))
            return "--provider-origin must be NAME=http(s)://HOST[:PORT]";
    }
    static __thread char problem[512];
    bk_sockets_config_t sockets;
    char *clients = bk_config_sockets (cfg, &sockets);
    const char *why = bk_sockets_check (&sockets, problem, sizeof problem);
    free (clients);
    return why;
}

void bk_config_test (bool verbose) {
    bk_config_t cfg;
    bk_config_defaults (&cfg);
    assert (strcmp (bk_config_check (&cfg), "--data DIR is required") == 0);
    assert (bk_config_option (&cfg, "--data", "/tmp/x") && !bk_config_option (&cfg, "--nope", "1"));
    assert (bk_config_check (&cfg) == NULL);
    assert (bk_config_option (&cfg, "--checkpoint-ms", "0"));
    assert (strcmp (bk_config_check (&cfg), "--checkpoint-ms must be 1 to 3600000") == 0);
    bk_config_defaults (&cfg);
    bk_config_option (&cfg, "--data", "/tmp/x");
    bk_config_option (&cfg, "--events", "tcp://127.0.0.1:1");
    assert (strstr (bk_config_check (&cfg), "needs --cert (CURVE) or --insecure"));
    cfg.insecure = true;
    assert (bk_config_check (&cfg) == NULL);
    bk_config_option (&cfg, "--events", "none");
    assert (cfg.event_endpoints == NULL);
    bk_sockets_config_t sockets;
    bk_config_option (&cfg, "--clients", "tcp://127.0.0.1:2");
    char *clients = bk_config_sockets (&cfg, &sockets);
    assert (strcmp (clients, "ipc:///tmp/x/client.ipc") == 0); //  --clients is not a shared option
    free (clients);
    cfg.client_endpoints = "tcp://127.0.0.1:2";
    clients = bk_config_sockets (&cfg, &sockets);
    assert (strcmp (sockets.endpoints[BK_CLIENTS], "ipc:///tmp/x/client.ipc,tcp://127.0.0.1:2") ==
            0);
    free (clients);
    if (verbose)
        printf ("bk_config: ok\n");
}
