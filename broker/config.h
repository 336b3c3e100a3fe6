/*  config.h - the broker's settings: defaults, options, and their check

    Shared by aq-broker and the all-in-one asyncqueue (and read from a
    configuration file by aq_config: one "option value" per line).
*/
#ifndef BK_CONFIG_H
#define BK_CONFIG_H

#include "sockets.h"

#include <stdbool.h>
#include <stdint.h>

#define BK_PROVIDER_ORIGINS 16 //  most --provider-origin options

typedef struct {
    const char *data_dir;         //  LMDB environment and admin.token live here
    const char *client_endpoints; //  comma-separated list to bind (ROUTER)
    const char *worker_endpoints; //  comma-separated list to bind (ROUTER)
    const char *event_endpoints;  //  comma-separated list to bind (PUB), may be NULL
    const char *cert;             //  --cert: the broker's secret certificate (CURVE on tcp)
    const char *allow_clients;    //  --allow-clients: public certificates of clients
    const char *allow_workers;    //  --allow-workers: public certificates of workers
    bool insecure;                //  --insecure: tcp on loopback without CURVE
    int64_t backoff_base_ms;      //  retry back-off base (default 1000)
    int64_t backoff_cap_ms;       //  retry back-off cap (default 3600000)
    int heartbeat_ms;             //  worker heartbeat interval (default 1000)
    int heartbeat_liveness;       //  missed heartbeats before a worker is lost (5)
    int max_body;                 //  result body cap in bytes (65536)
    bool nosync;                  //  relaxed durability (MDB_NOSYNC); never the default
    int64_t map_size;             //  initial LMDB map size in bytes (default 1 GiB)
    int64_t checkpoint_ms;        //  LMDB checkpoint behind the redo log (default 25)
    double rate_limit_rps;        //  default per-team requests/s, 0 = unlimited
    double rate_limit_burst;      //  default bucket size (default: rps)
    const char *plugin_dir;       //  provider and vault plugins (NULL: the default)
    int64_t poll_interval_ms;     //  polling interval when none is given (2000)
    int64_t provider_timeout_ms;  //  a provider op's time limit, then its host is killed (5000)
    const char *provider_origins[BK_PROVIDER_ORIGINS]; //  --provider-origin NAME=URL, borrowed
    int provider_origin_count; //  how many were given (more than fit: refused)
    bool verbose;              //  log every message
} bk_config_t;

//  Fills cfg with the defaults above (endpoints NULL).
void bk_config_defaults (bk_config_t *cfg);

//  Applies one command-line option that takes a value (--data, --events,
//  --backoff-base-ms, --backoff-cap-ms, --heartbeat-ms, --max-response-body,
//  --rate-limit, --rate-burst, --poll-interval-ms, --plugins, --map-size,
//  --checkpoint-ms, --cert, --allow-clients, --allow-workers, --provider-timeout-ms,
//  --provider-origin (repeatable)),
//  shared by aq-broker and asyncqueue. value is borrowed for cfg's life.
//  Returns false when name is not one of them.
bool bk_config_option (bk_config_t *cfg, const char *name, const char *value);

//  NULL when cfg can run, else what is wrong with it (including an endpoint
//  its security options do not allow: see sockets.h).
const char *bk_config_check (const bk_config_t *cfg);

//  The sockets cfg asks for (see sockets.h): its endpoints, with
//  ipc://DATA/client.ipc always among the clients'. Returns that client
//  list, which out points to; the caller frees it.
char *bk_config_sockets (const bk_config_t *cfg, bk_sockets_config_t *out);

void bk_config_test (bool verbose);

#endif
