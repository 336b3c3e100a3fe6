/*  main.c - aq-gateway: the REST gateway as its own process

    aq-gateway --broker EP --listen HOST:PORT [--max-body BYTES] [-v] [--help]
    Runs until SIGINT or SIGTERM. A startup failure prints one line, exit 1.
*/
#include "gateway.h"

#include "aq_config.h"
#include "aq_log.h"
#include "aq_main.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void s_usage (FILE *out) {
    fprintf (out, "usage: aq-gateway [--broker EP] [--listen HOST:PORT] [--max-body BYTES]\n"
                  "                  [--cert PATH_secret --broker-cert PATH]\n"
                  "                  [--max-connections N] [--per-ip N] [--timeout S]\n"
                  "                  [--deadline S] [--config FILE] [--log-format text|json]\n"
                  "                  [-v] [--help]\n"
                  "  --broker EP          the broker's client endpoint (ipc://data/client.ipc)\n"
                  "  --cert PATH_secret   our CURVE certificate, for a tcp:// broker with --cert\n"
                  "                       (aqctl cert create PATH; the broker lists PATH in\n"
                  "                       its --allow-clients directory)\n"
                  "  --broker-cert PATH   the broker's public certificate\n"
                  "  --listen HOST:PORT   where to serve HTTP (127.0.0.1:8080)\n"
                  "  --max-body BYTES     request body limit, 413 beyond it (1048576)\n"
                  "  --max-connections N  open connections in total (20000)\n"
                  "  --per-ip N           open connections per client address (1000)\n"
                  "  --timeout S          idle connection timeout in seconds (30)\n"
                  "  --deadline S         seconds a client has to send one request (60)\n"
                  "  --config FILE        read options from FILE ('option value' per line;\n"
                  "                       the command line's options win)\n"
                  "  --log-format F       text (the default) or json: one JSON object per\n"
                  "                       line (time, level, component, msg)\n"
                  "  -v                   log every request\n");
}

//  Parses a positive integer option value, or prints one line and exits 1.
static long long s_number (const char *name, const char *text, long long max) {
    char *end;
    errno = 0;
    long long value = text ? strtoll (text, &end, 10) : 0;
    if (!text || errno || end == text || *end || value < 1 || value > max) {
        fprintf (stderr, "aq-gateway: invalid value for %s: '%s'\n", name, text ? text : "");
        exit (1);
    }
    return value;
}

static int s_run (const void *cfg, aq_actor_t *actor) {
    return gw_gateway_run (cfg, actor);
}

int main (int argc, char **argv) {
    int argc_all;
    char **args = aq_config_expand (argc, argv, &argc_all);
    if (!args)
        return 1;
    gw_config_t cfg;
    gw_config_defaults (&cfg);
    int rc = 1;
    for (int i = 1; i < argc_all; i++) {
        const char *arg = args[i];
        const char *value = i + 1 < argc_all ? args[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            rc = 0;
            goto out;
        } else if (strcmp (arg, "-v") == 0 || strcmp (arg, "--verbose") == 0)
            cfg.verbose = true;
        else if (strcmp (arg, "--broker") == 0 && value)
            cfg.broker_endpoint = args[++i];
        else if (strcmp (arg, "--listen") == 0 && value)
            cfg.listen = args[++i];
        else if (strcmp (arg, "--cert") == 0 && value)
            cfg.cert = args[++i];
        else if (strcmp (arg, "--broker-cert") == 0 && value)
            cfg.broker_cert = args[++i];
        else if (strcmp (arg, "--max-body") == 0)
            cfg.max_body = (size_t) s_number (arg, args[++i], 1LL << 30);
        else if (strcmp (arg, "--max-connections") == 0)
            cfg.max_connections = (int) s_number (arg, args[++i], 1000000);
        else if (strcmp (arg, "--per-ip") == 0)
            cfg.per_ip_connections = (int) s_number (arg, args[++i], 1000000);
        else if (strcmp (arg, "--timeout") == 0)
            cfg.connection_timeout_s = (int) s_number (arg, args[++i], 86400);
        else if (strcmp (arg, "--deadline") == 0)
            cfg.request_deadline_s = (int) s_number (arg, args[++i], 86400);
        else if (strcmp (arg, "--log-format") == 0 && aq_log_format_parse (value) >= 0)
            aq_log_set_format (aq_log_format_parse (args[++i]));
        else {
            fprintf (stderr, "aq-gateway: unknown or incomplete option '%s' (see --help)\n", arg);
            goto out;
        }
    }
    rc = aq_main_run ("aq-gateway", s_run, &cfg);
out:
    aq_config_free (&args, argc_all);
    return rc;
}
