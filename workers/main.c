/*  main.c - aq-worker: runs HTTP calls for an asyncqueue broker

    Parses the command line and runs wk_worker_run until SIGINT or SIGTERM
    (a second signal stops at once, abandoning calls in flight).
*/
#include "aq_config.h"
#include "aq_log.h"
#include "aq_main.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void s_usage (FILE *out) {
    fprintf (out,
             "usage: aq-worker [options]\n"
             "\n"
             "Takes HTTP call jobs from an asyncqueue broker, runs them, reports results.\n"
             "\n"
             "  --broker EP              the broker's worker endpoint\n"
             "                           (default ipc://data/worker.ipc)\n"
             "  --cert PATH_secret       our CURVE certificate, for a tcp:// broker with --cert\n"
             "                           (aqctl cert create PATH; the broker lists PATH in\n"
             "                           its --allow-workers directory)\n"
             "  --broker-cert PATH       the broker's public certificate\n"
             "  --slots N                calls in flight at once, 1..100000 (default 64)\n"
             "  --allow-private-targets  allow calls to loopback, private, link-local, CGNAT\n"
             "                           and other non-public addresses (development, tests)\n"
             "  --heartbeat-ms N         heartbeat interval, 10..600000 ms (default 1000);\n"
             "                           the worker reconnects after 5 silent intervals\n"
             "  --name S                 name shown in the broker's stats (default host:pid)\n"
             "  --config FILE            read options from FILE ('option value' per line;\n"
             "                           the command line's options win)\n"
             "  --log-format F           text (the default) or json: one JSON object per\n"
             "                           line (time, level, component, msg, taskId)\n"
             "  -v, --verbose            log every call and debug messages\n"
             "  -h, --help               this text\n"
             "\n"
             "Runs until SIGINT or SIGTERM, then finishes the calls in flight (each bounded\n"
             "by its task's timeout), reports them and says BYE; a second signal stops at once.\n");
}

//  The integer in text within [min, max], or -1.
static long s_number (const char *text, long min, long max) {
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    return errno || end == text || *end || value < min || value > max ? -1 : value;
}

static int s_run (const void *cfg, aq_actor_t *actor) {
    return wk_worker_run (cfg, actor);
}

int main (int argc, char **argv) {
    int argc_all;
    char **args = aq_config_expand (argc, argv, &argc_all);
    if (!args)
        return 1;
    wk_config_t cfg;
    wk_config_defaults (&cfg);
    int rc = 1;
    for (int i = 1; i < argc_all; i++) {
        const char *arg = args[i];
        const char *value = i + 1 < argc_all ? args[i + 1] : NULL;
        bool takes_value = strcmp (arg, "--broker") == 0 || strcmp (arg, "--slots") == 0 ||
                           strcmp (arg, "--heartbeat-ms") == 0 || strcmp (arg, "--name") == 0 ||
                           strcmp (arg, "--cert") == 0 || strcmp (arg, "--broker-cert") == 0 ||
                           strcmp (arg, "--log-format") == 0;
        if (takes_value && !value) {
            fprintf (stderr, "aq-worker: '%s' needs a value (see --help)\n", arg);
            goto out;
        }
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0) {
            s_usage (stdout);
            rc = 0;
            goto out;
        } else if (strcmp (arg, "-v") == 0 || strcmp (arg, "--verbose") == 0) {
            cfg.verbose = true;
            aq_log_set_level (AQ_LOG_DEBUG);
        } else if (strcmp (arg, "--allow-private-targets") == 0)
            cfg.allow_private = true;
        else if (strcmp (arg, "--broker") == 0)
            cfg.broker_endpoint = value;
        else if (strcmp (arg, "--name") == 0)
            cfg.name = value;
        else if (strcmp (arg, "--cert") == 0)
            cfg.cert = value;
        else if (strcmp (arg, "--broker-cert") == 0)
            cfg.broker_cert = value;
        else if (strcmp (arg, "--log-format") == 0) {
            if (aq_log_format_parse (value) < 0) {
                fprintf (stderr, "aq-worker: --log-format must be text or json\n");
                goto out;
            }
            aq_log_set_format (aq_log_format_parse (value));
        } else if (strcmp (arg, "--slots") == 0 &&
                   (cfg.slots = (int) s_number (value, 1, 100000)) < 0) {
            fprintf (stderr, "aq-worker: --slots must be a number between 1 and 100000\n");
            goto out;
        } else if (strcmp (arg, "--heartbeat-ms") == 0 &&
                   (cfg.heartbeat_ms = (int) s_number (value, 10, 600000)) < 0) {
            fprintf (stderr, "aq-worker: --heartbeat-ms must be a number between 10 and 600000\n");
            goto out;
        } else if (!takes_value) {
            fprintf (stderr, "aq-worker: unknown option '%s' (see --help)\n", arg);
            goto out;
        }
        i += takes_value;
    }
    rc = aq_main_run ("aq-worker", s_run, &cfg);
out:
    aq_config_free (&args, argc_all);
    return rc;
}
