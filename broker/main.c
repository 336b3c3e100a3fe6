/*  main.c - aq-broker: the broker as its own process */
#include "aq_config.h"
#include "aq_log.h"
#include "aq_main.h"
#include "broker.h"
#include "provider_host.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static int s_run (const void *cfg, aq_actor_t *actor) {
    return bk_broker_run (cfg, actor);
}

static const char *s_usage =
    "usage: aq-broker --data DIR [options]\n"
    "\n"
    "Runs the asyncqueue broker: the single owner of state (LMDB in DIR).\n"
    "\n"
    "  --data DIR             data directory (created if missing; holds the LMDB\n"
    "                         environment, admin.token and the ipc sockets)\n"
    "  --clients EP[,EP]      more client endpoints to bind (default: none);\n"
    "                         ipc://DIR/client.ipc is always bound\n"
    "  --workers-endpoint EP[,EP]  worker endpoints (default ipc://DIR/worker.ipc)\n"
    "  --events EP[,EP]       task event endpoints (default ipc://DIR/events.ipc;\n"
    "                         'none' disables them)\n"
    "\n"
    "  ipc:// sockets are made 0600: only this user can connect. A tcp:// endpoint\n"
    "  needs CURVE keys (beyond loopback always; on loopback, any local user could\n"
    "  connect, so it takes --cert or --insecure):\n"
    "  --cert PATH_secret     the broker's secret certificate (aqctl cert create PATH)\n"
    "  --allow-clients DIR    public certificates of the gateways and clients admitted\n"
    "                         on tcp client and event endpoints (re-read on change)\n"
    "  --allow-workers DIR    public certificates of the workers admitted on tcp\n"
    "                         worker endpoints (re-read on change)\n"
    "  --insecure             allow tcp on loopback without CURVE (tests, development)\n"
    "\n"
    "  --backoff-base-ms N    retry back-off base (default 1000)\n"
    "  --backoff-cap-ms N     retry back-off cap (default 3600000)\n"
    "  --heartbeat-ms N       worker heartbeat interval (default 1000); a worker\n"
    "                         silent for 5 intervals is lost and its tasks return\n"
    "  --max-response-body N  bytes of a response body kept in result (default 65536)\n"
    "  --rate-limit RPS       default per-team request rate (0 = unlimited, the\n"
    "                         default); per team: aqctl team limit\n"
    "  --rate-burst N         default per-team burst (default: the rate)\n"
    "  --poll-interval-ms N   polling interval when the provider or pollConfig\n"
    "                         gives none (default 2000)\n"
    "  --plugins DIR          plugin directory (default $AQ_PLUGIN_DIR, else\n"
    "                         build/plugins or PREFIX/lib/asyncqueue/plugins)\n"
    "  --provider-timeout-ms N\n"
    "                         how long a provider plugin may read one answer\n"
    "                         (default 5000); then its provider host process is\n"
    "                         killed and started again\n"
    "  --provider-origin NAME=URL\n"
    "                         let provider NAME also poll URL's origin\n"
    "                         (http(s)://HOST[:PORT]) besides its own https hosts;\n"
    "                         repeatable; off by default: for local mock providers\n"
    "                         in tests, never needed in production\n"
    "  --map-size BYTES       initial LMDB map size (default 1 GiB; grows on demand)\n"
    "  --checkpoint-ms N      commit the LMDB transaction behind the redo log\n"
    "                         N ms after the last time (default 25); larger:\n"
    "                         fewer LMDB syncs, longer pauses when it happens\n"
    "  --nosync               relaxed durability: no redo log, no fsync (a power\n"
    "                         loss may lose the last acknowledged tasks)\n"
    "  --config FILE          read options from FILE ('option value' per line)\n"
    "  --log-format text|json log lines as text (the default) or one JSON object\n"
    "                         per line (time, level, component, msg, taskId)\n"
    "  -v, --verbose          log every malformed message\n"
    "  -h, --help             this text\n";

int main (int argc, char **argv) {
    if (aq_provider_host_wanted (argc, argv)) //  the broker re-executes itself
        return aq_provider_host_main (argc, argv);
    int n;
    char **args = aq_config_expand (argc, argv, &n);
    if (!args)
        return 1;
    bk_config_t cfg;
    bk_config_defaults (&cfg);
    const char *events = NULL;
    for (int i = 1; i < n; i++) {
        const char *arg = args[i];
        const char *value = i + 1 < n ? args[i + 1] : NULL;
        bool takes = true;
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0) {
            fputs (s_usage, stdout);
            aq_config_free (&args, n);
            return 0;
        } else if (strcmp (arg, "-v") == 0 || strcmp (arg, "--verbose") == 0)
            cfg.verbose = true, takes = false;
        else if (strcmp (arg, "--nosync") == 0)
            cfg.nosync = true, takes = false;
        else if (strcmp (arg, "--insecure") == 0)
            cfg.insecure = true, takes = false;
        else if (!value)
            goto usage;
        else if (strcmp (arg, "--events") == 0)
            events = value;
        else if (strcmp (arg, "--log-format") == 0) {
            if (aq_log_format_parse (value) < 0)
                goto usage;
            aq_log_set_format (aq_log_format_parse (value));
        } else if (bk_config_option (&cfg, arg, value))
            ;
        else if (strcmp (arg, "--clients") == 0)
            cfg.client_endpoints = value;
        else if (strcmp (arg, "--workers-endpoint") == 0)
            cfg.worker_endpoints = value;
        else
            goto usage;
        if (takes)
            i++;
    }
    //  the default endpoints: ipc sockets in the data directory
    char workers[4200], event_ipc[4200];
    if (!cfg.worker_endpoints && cfg.data_dir) {
        snprintf (workers, sizeof workers, "ipc://%s/worker.ipc", cfg.data_dir);
        cfg.worker_endpoints = workers;
    }
    if (!events && cfg.data_dir) {
        snprintf (event_ipc, sizeof event_ipc, "ipc://%s/events.ipc", cfg.data_dir);
        events = event_ipc;
    }
    if (events)
        bk_config_option (&cfg, "--events", events);
    const char *problem = bk_config_check (&cfg);
    if (problem) {
        fprintf (stderr, "aq-broker: %s\n", problem);
        aq_config_free (&args, n);
        return 2;
    }
    int rc = aq_main_run ("aq-broker", s_run, &cfg);
    aq_config_free (&args, n);
    return rc;
usage:
    fputs (s_usage, stderr);
    aq_config_free (&args, n);
    return 2;
}
