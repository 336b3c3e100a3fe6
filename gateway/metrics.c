/*  metrics.c - a STATS reply as Prometheus text (exposition format 0.0.4)

    The broker owns the numbers; this only names them. Known fields get
    their documented metric names, anything else the broker adds later is
    still rendered under a name derived from its key, so a new gauge needs
    no gateway change.
*/
#include "metrics.h"
#include "json.h"

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

//  A map key as C text (up to a NUL, as jansson's keys were), or NULL when
//  it is not a string or out of memory. The caller frees.
static char *s_key (const aq_node_t *key) {
    return key->type == AQ_NODE_STR ? strndup ((const char *) key->data, key->count) : NULL;
}

static bool s_is_number (const aq_node_t *value) {
    return value->type == AQ_NODE_INT || value->type == AQ_NODE_UINT ||
           value->type == AQ_NODE_BOOL || (value->type == AQ_NODE_FLOAT && isfinite (value->f));
}

static void s_number (FILE *out, const aq_node_t *value) {
    if (value->type == AQ_NODE_INT)
        fprintf (out, "%lld\n", (long long) value->i);
    else if (value->type == AQ_NODE_UINT)
        fprintf (out, "%llu\n", (unsigned long long) value->u);
    else if (value->type == AQ_NODE_FLOAT)
        fprintf (out, "%.17g\n", value->f);
    else
        fprintf (out, "%d\n", value->b ? 1 : 0);
}

static void s_family (FILE *out, const char *name, const char *type, const char *help) {
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

//  One gauge family with a label over an object of numbers.
static void s_labelled (FILE *out, const char *name, const char *label, const char *help,
                        const aq_node_t *object) {
    s_family (out, name, "gauge", help);
    aq_iter_t it;
    aq_node_iter (object, &it);
    aq_node_t key_node, value;
    while (aq_iter_next (&it, &key_node, &value)) {
        char *key = s_is_number (&value) ? s_key (&key_node) : NULL;
        if (!key)
            continue;
        fprintf (out, "%s{%s=\"", name, label);
        s_label (out, key);
        fputs ("\"} ", out);
        s_number (out, &value);
        free (key);
    }
}

static void s_counters (FILE *out, const aq_node_t *counters) {
    static const char *tasks[] = {"created", "dispatched", "completed", "failed", "retried", NULL};
    aq_iter_t it;
    aq_node_iter (counters, &it);
    aq_node_t key_node, value;
    while (aq_iter_next (&it, &key_node, &value)) {
        char *key = s_is_number (&value) ? s_key (&key_node) : NULL;
        if (!key)
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
        s_number (out, &value);
        free (key);
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

//  sum is NULL when the STATS body has none.
static void s_histogram (FILE *out, const aq_node_t *buckets, const aq_node_t *sum) {
    size_t n = 0;
    s_bucket_t *list = calloc (buckets->count + 1, sizeof *list);
    char **keys = calloc (buckets->count + 1, sizeof *keys);
    if (!list || !keys) {
        free (list);
        free (keys);
        return;
    }
    aq_iter_t it;
    aq_node_iter (buckets, &it);
    aq_node_t key_node, value;
    while (aq_iter_next (&it, &key_node, &value)) {
        char *key = value.type == AQ_NODE_INT ? s_key (&key_node) : NULL, *end;
        double bound = key ? strtod (key, &end) : NAN;
        if (!key || end == key || *end || isnan (bound)) {
            free (key);
            continue;
        }
        keys[n] = key;
        list[n++] = (s_bucket_t){bound, key, (long long) value.i};
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
    if (sum && s_is_number (sum)) {
        fprintf (out, "%s_sum ", name);
        s_number (out, sum);
    }
    fprintf (out, "%s_count %lld\n", name, list[n - 1].count);
    for (size_t i = 0; keys[i]; i++)
        free (keys[i]);
    free (keys);
    free (list);
}

char *gw_metrics_render (const aq_node_t *stats, const gw_gauge_t *gateway, size_t count) {
    assert (stats && (gateway || count == 0));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    aq_iter_t it;
    aq_node_iter (stats, &it);
    aq_node_t key_node, value, sum;
    while (aq_iter_next (&it, &key_node, &value)) {
        char name[160], snake[96], help[160];
        char *key = s_key (&key_node);
        bool map = value.type == AQ_NODE_MAP;
        if (!key)
            continue;
        if (strcmp (key, "tasks") == 0 && map)
            s_labelled (out, S_PREFIX "tasks", "status", "Tasks by status.", &value);
        else if (strcmp (key, "counters") == 0 && map)
            s_counters (out, &value);
        else if (strcmp (key, "attemptLatencyMs") == 0 && map)
            s_histogram (out, &value,
                         aq_node_get (stats, "attemptLatencySumMs", &sum) ? &sum : NULL);
        else if (strcmp (key, "attemptLatencySumMs") == 0)
            ; //  the histogram's _sum
        else if (strcmp (key, "workers") == 0 && s_is_number (&value)) {
            s_family (out, S_PREFIX "workers_connected", "gauge", "Workers connected.");
            fputs (S_PREFIX "workers_connected ", out);
            s_number (out, &value);
        } else if (strcmp (key, "lmdbBytes") == 0 && s_is_number (&value)) {
            s_family (out, S_PREFIX "lmdb_bytes", "gauge", "Size of the LMDB store in bytes.");
            fputs (S_PREFIX "lmdb_bytes ", out);
            s_number (out, &value);
        } else if (s_is_number (&value)) {
            snprintf (name, sizeof name, S_PREFIX "%s", s_snake (key, snake, sizeof snake));
            snprintf (help, sizeof help, "Broker gauge %s.", snake);
            s_family (out, name, "gauge", help);
            fprintf (out, "%s ", name);
            s_number (out, &value);
        } else if (map) {
            snprintf (name, sizeof name, S_PREFIX "%s", s_snake (key, snake, sizeof snake));
            snprintf (help, sizeof help, "Broker gauge %s by key.", snake);
            s_labelled (out, name, "key", help, &value);
        }
        free (key);
    }
    //  A team's figures (a team key's STATS) stay that team's: the
    //  gateway's own gauges count every team's connections.
    aq_node_t scope;
    if (aq_node_get (stats, "scope", &scope) && aq_node_streq (&scope, "team"))
        count = 0;
    for (size_t i = 0; i < count; i++) {
        char name[160], snake[96], help[160];
        snprintf (name, sizeof name, S_PREFIX "gateway_%s",
                  s_snake (gateway[i].name, snake, sizeof snake));
        snprintf (help, sizeof help, "This gateway's %s.", snake);
        s_family (out, name, "gauge", help);
        fprintf (out, "%s %lld\n", name, (long long) gateway[i].value);
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

//  Renders stats, given as JSON text (read with the gateway's parser).
static char *s_render (const char *stats, const gw_gauge_t *gateway, size_t count) {
    aq_writer_t w;
    aq_writer_init (&w);
    char error[GW_JSON_ERROR_MAX];
    assert (gw_json_parse (stats, strlen (stats), &w, error, sizeof error) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = gw_metrics_render (&node, gateway, count);
    assert (text);
    aq_writer_release (&w);
    return text;
}

void gw_metrics_test (bool verbose) {
    if (verbose)
        printf (" * gw_metrics: ");

    gw_gauge_t gateway[] = {{"connections", 12}, {"pending", 3}};
    char *text = s_render (
        "{\"tasks\": {\"pending\": 3, \"completed\": 10, \"failed\": 1},"
        " \"counters\": {\"created\": 14, \"dispatched\": 11, \"completed\": 10, \"failed\": 1,"
        "                \"retried\": 2, \"malformed\": 0, \"webhookSent\": 5},"
        " \"workers\": 2, \"lmdbBytes\": 1048576,"
        " \"attemptLatencyMs\": {\"100\": 8, \"10\": 3, \"1000\": 10, \"+Inf\": 11},"
        " \"attemptLatencySumMs\": 2500, \"queueDepthMax\": 7.5, \"paused\": true,"
        " \"leases\": {\"worker-1\": 2}, \"name\": \"ignored\"}",
        gateway, 2);
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
    s_expect (text, "asyncqueue_paused 1\n");
    s_expect (text, "asyncqueue_leases{key=\"worker-1\"} 2\n");
    s_expect (text, "asyncqueue_gateway_connections 12\n");
    s_expect (text, "asyncqueue_gateway_pending 3\n");
    assert (!strstr (text, "ignored"));
    assert (!strstr (text, "attempt_latency_sum"));
    free (text);

    //  No +Inf bucket: one is added with the largest count; no _sum
    text =
        s_render ("{\"attemptLatencyMs\": {\"50\": 4, \"5\": 1, \"x\": 9, \"7\": 1.5}}", NULL, 0);
    s_expect (text, "asyncqueue_attempt_duration_ms_bucket{le=\"5\"} 1\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"50\"} 4\n"
                    "asyncqueue_attempt_duration_ms_bucket{le=\"+Inf\"} 4\n"
                    "asyncqueue_attempt_duration_ms_count 4\n");
    free (text);

    //  A team's STATS: its tasks and counters, none of the gateway's gauges
    text = s_render ("{\"scope\": \"team\", \"tasks\": {\"pending\": 1},"
                     " \"counters\": {\"created\": 4}}",
                     gateway, 1);
    s_expect (text, "asyncqueue_tasks{status=\"pending\"} 1\n");
    s_expect (text, "asyncqueue_tasks_created_total 4\n");
    assert (!strstr (text, "gateway") && !strstr (text, "scope") && !strstr (text, "team"));
    free (text);
    text = s_render ("{\"scope\": \"global\", \"tasks\": {\"pending\": 1}}", gateway, 1);
    s_expect (text, "asyncqueue_gateway_connections 12\n");
    assert (!strstr (text, "asyncqueue_gateway_pending"));
    free (text);

    //  Label values are escaped; an empty STATS is an empty page
    text = s_render ("{\"tasks\": {\"we\\\"ird\\\\\": 1}}", NULL, 0);
    s_expect (text, "asyncqueue_tasks{status=\"we\\\"ird\\\\\"} 1\n");
    free (text);
    text = s_render ("{}", NULL, 0);
    assert (strcmp (text, "") == 0);
    free (text);

    //  Keys that are not strings are left out (a broker never sends them)
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 2);
    aq_write_int (&w, 7), aq_write_int (&w, 1);
    aq_write_kv_int (&w, "workers", 3);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t stats;
    assert (aq_msg_parse (data, size, &stats) == 0);
    text = gw_metrics_render (&stats, NULL, 0);
    assert (text && strcmp (text, "# HELP asyncqueue_workers_connected Workers connected.\n"
                                  "# TYPE asyncqueue_workers_connected gauge\n"
                                  "asyncqueue_workers_connected 3\n") == 0);
    free (text);
    aq_writer_release (&w);

    if (verbose)
        printf ("OK\n");
}
