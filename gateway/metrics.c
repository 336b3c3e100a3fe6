/*  metrics.c - a STATS reply as Prometheus text (exposition format 0.0.4)

    The broker owns the numbers; this only names them. Known fields get
    their documented metric names, anything else the broker adds later is
    still rendered under a name derived from its key, so a new gauge needs
    no gateway change.
*/
#include "metrics.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PREFIX "asyncqueue_"

//  camelCase or odd characters to snake_case into buf.
static const char *s_snake (const char *key, char *buf, size_t size) {
    size_t out = 0;
    for (size_t i = 0; key[i] && out + 2 < size; i++) {
        unsigned char c = (unsigned char) key[i];
        if (isupper (c)) {
            if (out && buf[out - 1] != '_')
                buf[out++] = '_';
            buf[out++] = (char) tolower (c);
        } else
            buf[out++] = isalnum (c) ? (char) c : '_';
    }
    buf[out] = 0;
    return buf;
}

static void s_label (FILE *out, const char *value) {
    for (; *value; value++) {
        if (*value == '\\' || *value == '"')
            fprintf (out, "\\%c", *value);
        else if (*value == '\n')
            fputs ("\\n", out);
        else
            fputc (*value, out);
    }
}

static void s_number (FILE *out, const json_t *value) {
    if (json_is_integer (value))
        fprintf (out, "%lld\n", (long long) json_integer_value (value));
    else if (json_is_real (value))
        fprintf (out, "%.17g\n", json_real_value (value));
    else
        fprintf (out, "%d\n", json_is_true (value) ? 1 : 0);
}

static bool s_is_number (const json_t *value) {
    return json_is_number (value) || json_is_boolean (value);
}

static void s_family (FILE *out, const char *name, const char *type, const char *help) {
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

//  One gauge family with a label over an object of numbers.
static void s_labelled (FILE *out, const char *name, const char *label, const char *help,
                        const json_t *object) {
    s_family (out, name, "gauge", help);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) object, key, value) {
        if (!s_is_number (value))
            continue;
        fprintf (out, "%s{%s=\"", name, label);
        s_label (out, key);
        fputs ("\"} ", out);
        s_number (out, value);
    }
}

static void s_counters (FILE *out, const json_t *counters) {
    static const char *tasks[] = {"created", "dispatched", "completed", "failed", "retried", NULL};
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) counters, key, value) {
        if (!s_is_number (value))
            continue;
        char name[160], snake[96], help[160];
        bool task = false;
        for (int i = 0; tasks[i]; i++)
            task |= strcmp (tasks[i], key) == 0;
        if (task) {
            snprintf (name, sizeof name, S_PREFIX "tasks_%s_total", key);
            snprintf (help, sizeof help, "Tasks %s since the store was created.", key);
        } else if (strcmp (key, "malformed") == 0) {
            snprintf (name, sizeof name, S_PREFIX "malformed_messages_total");
            snprintf (help, sizeof help, "Malformed protocol messages received by the broker.");
        } else {
            snprintf (name, sizeof name, S_PREFIX "%s_total", s_snake (key, snake, sizeof snake));
            snprintf (help, sizeof help, "Broker counter %s.", snake);
        }
        s_family (out, name, "counter", help);
        fprintf (out, "%s ", name);
        s_number (out, value);
    }
}

typedef struct {
    double bound;     //  upper bound in ms, INFINITY for +Inf
    const char *text; //  the key as given
    long long count;  //  attempts at or under bound
} s_bucket_t;

static int s_bucket_cmp (const void *a, const void *b) {
    double x = ((const s_bucket_t *) a)->bound, y = ((const s_bucket_t *) b)->bound;
    return x < y ? -1 : x > y;
}

static void s_histogram (FILE *out, const json_t *buckets, const json_t *sum) {
    size_t size = json_object_size (buckets), n = 0;
    s_bucket_t *list = calloc (size + 1, sizeof *list);
    if (!list)
        return;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) buckets, key, value) {
        char *end;
        double bound = strtod (key, &end);
        if (end == key || *end || isnan (bound) || !json_is_integer (value))
            continue;
        list[n++] = (s_bucket_t){bound, key, (long long) json_integer_value (value)};
    }
    qsort (list, n, sizeof *list, s_bucket_cmp);
    if (n == 0 || !isinf (list[n - 1].bound)) {
        list[n] = (s_bucket_t){INFINITY, "+Inf", n ? list[n - 1].count : 0};
        n++;
    }
    const char *name = S_PREFIX "attempt_duration_ms";
    s_family (out, name, "histogram", "Duration of attempts (outgoing calls) in milliseconds.");
    for (size_t i = 0; i < n; i++) {
        fprintf (out, "%s_bucket{le=\"", name);
        if (isinf (list[i].bound))
            fputs ("+Inf", out);
        else
            s_label (out, list[i].text);
        fprintf (out, "\"} %lld\n", list[i].count);
    }
    if (s_is_number (sum)) {
        fprintf (out, "%s_sum ", name);
        s_number (out, sum);
    }
    fprintf (out, "%s_count %lld\n", name, list[n - 1].count);
    free (list);
}

char *gw_metrics_render (const json_t *stats, const json_t *gateway) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) stats, key, value) {
        char name[160], snake[96], help[160];
        if (strcmp (key, "tasks") == 0 && json_is_object (value))
            s_labelled (out, S_PREFIX "tasks", "status", "Tasks by status.", value);
        else if (strcmp (key, "counters") == 0 && json_is_object (value))
            s_counters (out, value);
        else if (strcmp (key, "attemptLatencyMs") == 0 && json_is_object (value))
            s_histogram (out, value, json_object_get (stats, "attemptLatencySumMs"));
        else if (strcmp (key, "attemptLatencySumMs") == 0)
            continue; //  the histogram's _sum
        else if (strcmp (key, "workers") == 0 && s_is_number (value)) {
            s_family (out, S_PREFIX "workers_connected", "gauge", "Workers connected.");
            fputs (S_PREFIX "workers_connected ", out);
            s_number (out, value);
        } else if (strcmp (key, "lmdbBytes") == 0 && s_is_number (value)) {
            s_family (out, S_PREFIX "lmdb_bytes", "gauge", "Size of the LMDB store in bytes.");
            fputs (S_PREFIX "lmdb_bytes ", out);
            s_number (out, value);
        } else if (s_is_number (value)) {
            snprintf (name, sizeof name, S_PREFIX "%s", s_snake (key, snake, sizeof snake));
            snprintf (help, sizeof help, "Broker gauge %s.", snake);
            s_family (out, name, "gauge", help);
            fprintf (out, "%s ", name);
            s_number (out, value);
        } else if (json_is_object (value)) {
            snprintf (name, sizeof name, S_PREFIX "%s", s_snake (key, snake, sizeof snake));
            snprintf (help, sizeof help, "Broker gauge %s by key.", snake);
            s_labelled (out, name, "key", help, value);
        }
    }
    //  A team's figures (a team key's STATS) stay that team's: the
    //  gateway's own gauges count every team's connections.
    const char *scope = json_string_value (json_object_get (stats, "scope"));
    if (scope && strcmp (scope, "team") == 0)
        gateway = NULL;
    json_object_foreach ((json_t *) gateway, key, value) {
        if (!s_is_number (value))
            continue;
        char name[160], snake[96], help[160];
        snprintf (name, sizeof name, S_PREFIX "gateway_%s", s_snake (key, snake, sizeof snake));
        snprintf (help, sizeof help, "This gateway's %s.", snake);
        s_family (out, name, "gauge", help);
        fprintf (out, "%s ", name);
        s_number (out, value);
    }
    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Selftest

static void s_expect (const char *text, const char *line) {
    if (!strstr (text, line)) {
        fprintf (stderr, "gw_metrics: missing '%s' in:\n%s", line, text);
        assert (false);
    }
}

void gw_metrics_test (bool verbose) {
    if (verbose)
        printf (" * gw_metrics: ");

    json_t *stats = json_loads (
        "{\"tasks\": {\"pending\": 3, \"completed\": 10, \"failed\": 1},"
        " \"counters\": {\"created\": 14, \"dispatched\": 11, \"completed\": 10, \"failed\": 1,"
        "                \"retried\": 2, \"malformed\": 0, \"webhookSent\": 5},"
        " \"workers\": 2, \"lmdbBytes\": 1048576,"
        " \"attemptLatencyMs\": {\"100\": 8, \"10\": 3, \"1000\": 10, \"+Inf\": 11},"
        " \"attemptLatencySumMs\": 2500, \"queueDepthMax\": 7.5,"
        " \"leases\": {\"worker-1\": 2}, \"name\": \"ignored\"}",
        0, NULL);
    assert (stats);
    json_t *gateway = json_pack ("{si si}", "connections", 12, "pending", 3);
    char *text = gw_metrics_render (stats, gateway);
    assert (text);
    if (verbose)
        printf ("\n%s", text);

    s_expect (text, "# TYPE asyncqueue_tasks gauge\n");
    s_expect (text, "asyncqueue_tasks{status=\"pending\"} 3\n");
    s_expect (text, "asyncqueue_tasks{status=\"failed\"} 1\n");
    s_expect (text, "# TYPE asyncqueue_tasks_created_total counter\nasyncqueue_tasks_created_total "
                    "14\n");
    s_expect (text, "asyncqueue_tasks_dispatched_total 11\n");
    s_expect (text, "asyncqueue_tasks_retried_total 2\n");
    s_expect (text, "asyncqueue_malformed_messages_total 0\n");
    s_expect (text, "# TYPE asyncqueue_webhook_sent_total counter\n");
    s_expect (text, "asyncqueue_workers_connected 2\n");
    s_expect (text, "asyncqueue_lmdb_bytes 1048576\n");
    s_expect (text, "# TYPE asyncqueue_attempt_duration_ms histogram\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"10\"} 3\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"100\"} 8\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"1000\"} 10\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"+Inf\"} 11\n"
                    "asyncqueue_attempt_duration_ms_sum 2500\n"
                    "asyncqueue_attempt_duration_ms_count 11\n");
    s_expect (text, "asyncqueue_queue_depth_max 7.5\n");
    s_expect (text, "asyncqueue_leases{key=\"worker-1\"} 2\n");
    s_expect (text, "asyncqueue_gateway_connections 12\n");
    s_expect (text, "asyncqueue_gateway_pending 3\n");
    assert (!strstr (text, "ignored"));
    assert (!strstr (text, "attempt_latency_sum"));
    free (text);
    json_decref (stats);
    json_decref (gateway);

    //  No +Inf bucket: one is added with the largest count; no _sum
    stats = json_pack ("{s{si si}}", "attemptLatencyMs", "50", 4, "5", 1);
    text = gw_metrics_render (stats, NULL);
    s_expect (text, "asyncqueue_attempt_duration_ms_bucket{le=\"5\"} 1\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"50\"} 4\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"+Inf\"} 4\n"
                    "asyncqueue_attempt_duration_ms_count 4\n");
    free (text);
    json_decref (stats);

    //  A team's STATS: its tasks and counters, none of the gateway's gauges
    stats = json_pack ("{ss s{si} s{si}}", "scope", "team", "tasks", "pending", 1, "counters",
                       "created", 4);
    gateway = json_pack ("{si}", "connections", 12);
    text = gw_metrics_render (stats, gateway);
    s_expect (text, "asyncqueue_tasks{status=\"pending\"} 1\n");
    s_expect (text, "asyncqueue_tasks_created_total 4\n");
    assert (!strstr (text, "gateway") && !strstr (text, "scope") && !strstr (text, "team"));
    free (text);
    json_object_set_new (stats, "scope", json_string ("global"));
    text = gw_metrics_render (stats, gateway);
    s_expect (text, "asyncqueue_gateway_connections 12\n");
    free (text);
    json_decref (stats);
    json_decref (gateway);

    //  Label values are escaped; an empty STATS is an empty page
    stats = json_pack ("{s{si}}", "tasks", "we\"ird\\", 1);
    text = gw_metrics_render (stats, NULL);
    s_expect (text, "asyncqueue_tasks{status=\"we\\\"ird\\\\\"} 1\n");
    free (text);
    json_decref (stats);
    stats = json_object ();
    text = gw_metrics_render (stats, NULL);
    assert (text && strcmp (text, "") == 0);
    free (text);
    json_decref (stats);

    if (verbose)
        printf ("OK\n");
}
