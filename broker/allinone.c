/*  allinone.c - asyncqueue: broker, gateway and workers in one process

    Assembles the parts: the broker, the workers and the gateway run as
    zactors (aq_actor.h) over inproc:// endpoints of the process's ZeroMQ
    context, started in that order, each once the one before is ready.
    Shutdown order keeps every task: the gateway stops taking requests,
    workers finish their calls and report them, then the broker commits
    and stops. A second signal hurries the workers.
*/
#include "../gateway/gateway.h"
#include "../workers/worker.h"
#include "aq_config.h"
#include "aq_log.h"
#include "aq_main.h"
#include "aq_notify.h"
#include "broker.h"
#include "provider_host.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CLIENTS     "inproc://aq-clients"
#define S_WORKERS     "inproc://aq-workers"
#define S_WORKERS_MAX 64

static bk_config_t s_broker;
static wk_config_t s_worker;                 //  what every worker runs with
static wk_config_t s_workers[S_WORKERS_MAX]; //  each one's copy, with its name
static char s_names[S_WORKERS_MAX][32];
static gw_config_t s_gateway;

static int s_run_broker (const void *cfg, aq_actor_t *actor) {
    return bk_broker_run ((const bk_config_t *) cfg, actor);
}

static int s_run_worker (const void *cfg, aq_actor_t *actor) {
    return wk_worker_run ((const wk_config_t *) cfg, actor);
}

static int s_run_gateway (const void *cfg, aq_actor_t *actor) {
    return gw_gateway_run ((const gw_config_t *) cfg, actor);
}

static const char *s_usage =
    "usage: asyncqueue --data DIR --listen HOST:PORT [options]\n"
    "\n"
    "Runs broker, REST gateway and workers in one process.\n"
    "\n"
    "  --data DIR               data directory (default ./data)\n"
    "  --listen HOST:PORT       REST API address (default 127.0.0.1:8080)\n"
    "  --workers N              worker threads (default 2)\n"
    "  --slots N                concurrent calls per worker thread (default 64)\n"
    "  --allow-private-targets  allow calls to loopback/private addresses\n"
    "                           (development and tests; off by default: SSRF guard)\n"
    "  --clients EP[,EP]        also bind the broker's client socket here, for\n"
    "                           internal services (ipc://DIR/client.ipc always is)\n"
    "  --workers-endpoint EP    also accept external aq-worker processes here\n"
    "  --events EP              publish task events here (PUB)\n"
    "  --cert PATH_secret, --allow-clients DIR, --allow-workers DIR, --insecure\n"
    "                           CURVE for tcp:// endpoints, as for aq-broker: tcp\n"
    "                           needs --cert (or --insecure, on loopback only)\n"
    "  --backoff-base-ms N      retry back-off base (default 1000)\n"
    "  --backoff-cap-ms N       retry back-off cap (default 3600000)\n"
    "  --max-body BYTES         request body limit (default 1048576)\n"
    "  --max-connections N      open HTTP connections in all (default 20000)\n"
    "  --per-ip N               open HTTP connections per client address (default 1000)\n"
    "  --timeout S              idle HTTP connection timeout in seconds (default 30)\n"
    "  --deadline S             seconds a client has to send one request (default 60)\n"
    "  --poll-interval-ms N     polling interval when the provider or pollConfig\n"
    "                           gives none (default 2000)\n"
    "  --plugins DIR            plugin directory (default $AQ_PLUGIN_DIR, else\n"
    "                           build/plugins or PREFIX/lib/asyncqueue/plugins)\n"
    "  --provider-origin NAME=URL\n"
    "                           let provider NAME also poll URL's origin\n"
    "                           (http(s)://HOST[:PORT]) besides its own https hosts;\n"
    "                           repeatable; off by default: for local mock providers\n"
    "                           in tests, never needed in production\n"
    "  --nosync                 relaxed durability (no redo log, no fsync)\n"
    "  --heartbeat-ms N, --max-response-body N, --rate-limit RPS, --rate-burst N,\n"
    "  --map-size BYTES, --checkpoint-ms N, --provider-timeout-ms N\n"
    "                           as for aq-broker (aq-broker --help)\n"
    "  --config FILE            read options from FILE ('option value' per line)\n"
    "  --log-format text|json   log lines as text (the default) or one JSON object\n"
    "                           per line (time, level, component, msg, taskId)\n"
    "  -v, --verbose            more logging\n"
    "  -h, --help               this text\n";

int main (int argc, char **argv) {
    if (aq_provider_host_wanted (argc, argv)) //  the broker re-executes itself
        return aq_provider_host_main (argc, argv);
    int n;
    char **args = aq_config_expand (argc, argv, &n);
    if (!args)
        return 1;
    bk_config_defaults (&s_broker);
    wk_config_defaults (&s_worker);
    gw_config_defaults (&s_gateway);
    s_broker.data_dir = "data";
    s_gateway.listen = "127.0.0.1:8080";
    int workers = 2;
    static char clients[4096], worker_eps[4096];
    snprintf (clients, sizeof clients, "%s", S_CLIENTS);
    snprintf (worker_eps, sizeof worker_eps, "%s", S_WORKERS);
    for (int i = 1; i < n; i++) {
        const char *arg = args[i];
        const char *value = i + 1 < n ? args[i + 1] : NULL;
        bool takes = true;
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0) {
            fputs (s_usage, stdout);
            aq_config_free (&args, n);
            return 0;
        } else if (strcmp (arg, "-v") == 0 || strcmp (arg, "--verbose") == 0)
            s_broker.verbose = s_worker.verbose = s_gateway.verbose = true, takes = false;
        else if (strcmp (arg, "--allow-private-targets") == 0)
            s_worker.allow_private = true, takes = false;
        else if (strcmp (arg, "--nosync") == 0)
            s_broker.nosync = true, takes = false;
        else if (strcmp (arg, "--insecure") == 0)
            s_broker.insecure = true, takes = false;
        else if (!value)
            goto usage;
        else if (bk_config_option (&s_broker, arg, value))
            ;
        else if (strcmp (arg, "--listen") == 0)
            s_gateway.listen = value;
        else if (strcmp (arg, "--workers") == 0)
            workers = atoi (value);
        else if (strcmp (arg, "--slots") == 0)
            s_worker.slots = atoi (value);
        else if (strcmp (arg, "--clients") == 0)
            snprintf (clients, sizeof clients, "%s,%s", S_CLIENTS, value);
        else if (strcmp (arg, "--workers-endpoint") == 0)
            snprintf (worker_eps, sizeof worker_eps, "%s,%s", S_WORKERS, value);
        else if (strcmp (arg, "--max-body") == 0)
            s_gateway.max_body = (size_t) atoll (value);
        else if (strcmp (arg, "--timeout") == 0)
            s_gateway.connection_timeout_s = atoi (value);
        else if (strcmp (arg, "--deadline") == 0)
            s_gateway.request_deadline_s = atoi (value);
        else if (strcmp (arg, "--per-ip") == 0)
            s_gateway.per_ip_connections = atoi (value);
        else if (strcmp (arg, "--max-connections") == 0)
            s_gateway.max_connections = atoi (value);
        else if (strcmp (arg, "--log-format") == 0) {
            if (aq_log_format_parse (value) < 0)
                goto usage;
            aq_log_set_format (aq_log_format_parse (value));
        } else
            goto usage;
        if (takes)
            i++;
    }
    s_broker.client_endpoints = clients;
    s_broker.worker_endpoints = worker_eps;
    const char *problem = bk_config_check (&s_broker);
    if (workers < 0 || workers > S_WORKERS_MAX || s_worker.slots < 1)
        problem = "--workers must be 0 to 64 and --slots at least 1";
    if (problem) {
        fprintf (stderr, "asyncqueue: %s\n", problem);
        aq_config_free (&args, n);
        return 2;
    }
    s_worker.broker_endpoint = S_WORKERS;
    s_gateway.broker_endpoint = S_CLIENTS;

    int sigfd = aq_main_signalfd (); //  before any thread: none of them takes signals
    if (sigfd < 0) {
        fprintf (stderr, "asyncqueue: cannot take signals\n");
        aq_config_free (&args, n);
        return 1;
    }
    aq_notify_expect (2 + workers); //  READY=1 once the broker, the gateway and each worker are up
    //  broker, workers, gateway: actors[0], [1..workers], [workers + 1]
    zactor_t *actors[S_WORKERS_MAX + 2] = {NULL};
    int started = 0, rc = 0;
    actors[started] = aq_actor_start ("aq-broker", s_run_broker, &s_broker);
    while (actors[started] && started < workers) {
        started++;
        s_workers[started - 1] = s_worker;
        snprintf (s_names[started - 1], sizeof s_names[0], "asyncqueue-worker-%d", started);
        s_workers[started - 1].name = s_names[started - 1];
        char thread[24];
        snprintf (thread, sizeof thread, "aq-worker-%d", started);
        actors[started] = aq_actor_start (thread, s_run_worker, &s_workers[started - 1]);
    }
    if (actors[started]) {
        started++;
        actors[started] = aq_actor_start ("aq-gateway", s_run_gateway, &s_gateway);
    }
    if (actors[started]) {
        aq_log (AQ_LOG_INFO, "asyncqueue", "serving http://%s with %d workers, data in '%s'",
                s_gateway.listen, workers, s_broker.data_dir);
        rc = aq_actor_wait (actors, started + 1, sigfd);
    } else
        rc = -1; //  one could not start: stop those that did
    aq_log (AQ_LOG_INFO, "asyncqueue", "shutting down");
    aq_notify_stopping ();
    bool hurry = false; //  a second signal hurries every worker
    if (aq_actor_stop (&actors[workers + 1], sigfd, &hurry) != 0) //  the gateway first
        rc = -1;
    for (int i = 1; i <= workers; i++) //  the workers drain together
        if (actors[i])
            zstr_send (actors[i], "STOP");
    for (int i = workers; i >= 0; i--) //  the broker last
        if (aq_actor_stop (&actors[i], sigfd, &hurry) != 0)
            rc = -1;
    close (sigfd);
    aq_config_free (&args, n);
    return rc == 0 ? 0 : 1;
usage:
    fputs (s_usage, stderr);
    aq_config_free (&args, n);
    return 2;
}
