/*  bench.c - aq-bench: load generator for the broker's client protocol

    aq-bench create   --broker EP --key K --count N [--pipeline P] [--conns C]
    aq-bench e2e      --broker EP --key K --count N --target URL [--pipeline P] [--conns C]
                      [--flow-keys N]
    aq-bench latency  --broker EP --key K --rate R --seconds S --target URL [--figure NAME]
    aq-bench fill     --broker EP --key K --count N [--pipeline P] [--conns C]
    aq-bench list     --broker EP --key K --count N --query JSON [--query JSON]...
                      --figure NAME
    aq-bench rtt      --broker EP --key K --rate R --seconds S --figure NAME
    aq-bench hold     --broker EP --key K --count N --target URL --flow-key NAME

    list sends N TASK_LISTs one after another, the queries (TASK_LIST fields
    as JSON objects) in turn, and prints the p99 of their round trips as
    figure NAME; rtt creates far-future tasks at R per second for S seconds
    on one connection and prints the p99 of the creates' round trips (a
    SIGTERM ends it early: the creates sent so far count).

    e2e with --flow-keys N gives its tasks flowControl {key: "bench-<i>",
    parallelism: 1}, spread over N keys in turn, and prints
    flow_e2e_callbacks_per_s. hold creates N tasks of one flow control key
    NAME (parallelism 1) due now, and prints only a note: a key with that
    many tasks waiting. latency with --figure prints its p99 as NAME.

    Each figure is printed as one line, exactly `bench <name> <value> <unit>`,
    so runs can be compared by script; notes go to stderr. Requests are
    pipelined through the client library: up to P TASK_CREATEs in flight per
    connection, C connections (one thread and one client each).

    The target (tests/target.c, aq-target) is an HTTP server that counts what
    it receives: GET /_stats answers {"count": n, ...}; for requests carrying
    an X-Due-Ms header (the task's due time, Unix ms) it records arrival minus
    due, and GET /_latency answers {"p50": ms, "p99": ms, "count": n}.
*/
#include "aq_client.h"
#include "aq_time.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_STALL_MS     30000              //  no reply for this long: give up
#define S_FAR_FUTURE   (365LL * 86400000) //  "never" for delayed tasks, ms ahead
#define S_LATENCY_LEAD 1000               //  latency tasks are due this long after creation, ms

typedef struct {
    const char *endpoint;    //  broker client endpoint
    const char *key;         //  API key
    const char *target;      //  callback URL (e2e, latency)
    int64_t count;           //  tasks to create (all connections)
    int pipeline;            //  requests in flight per connection
    int conns;               //  connections, one thread each
    double rate;             //  creates per second in all, 0 = as fast as possible
    bool latency;            //  each task due at creation + S_LATENCY_LEAD, with X-Due-Ms
    bool delayed;            //  tasks delayed far into the future (never run)
    const char *cert;        //  our secret certificate: CURVE (with broker_cert)
    const char *broker_cert; //  the broker's public certificate
    int flow_keys;           //  spread tasks over this many flow control keys, 0: none
    const char *flow_key;    //  or give every task this one (parallelism 1)
    const char *figure;      //  latency: print p99 under this name
} s_plan_t;

typedef struct {
    const s_plan_t *plan;  //  what to do
    int index;             //  this connection's number
    int64_t count;         //  this connection's share
    int64_t ok;            //  2xx replies
    int64_t failed;        //  other replies
    int first_status;      //  first failure's status (-1: transport)
    char first_error[200]; //  and its message
    pthread_t thread;      //  runs s_pump
} s_pump_t;

//  A task; n numbers it among all connections' (flow keys in turn).
static json_t *s_task (const s_plan_t *plan, int64_t n) {
    json_t *task = json_pack ("{s:s}", "targetUrl", plan->target);
    if (plan->flow_keys > 0 || plan->flow_key) {
        char key[32];
        snprintf (key, sizeof key, "bench-%lld",
                  (long long) (n % (plan->flow_keys > 0 ? plan->flow_keys : 1)));
        json_object_set_new (task, "flowControl",
                             json_pack ("{s:s, s:i}", "key", plan->flow_key ? plan->flow_key : key,
                                        "parallelism", 1));
    }
    char iso[32];
    if (plan->latency) {
        int64_t due = aq_time_now_ms () + S_LATENCY_LEAD;
        char due_text[24];
        snprintf (due_text, sizeof due_text, "%lld", (long long) due);
        json_object_set_new (task, "delayUntil", json_string (aq_time_format (due, iso)));
        json_object_set_new (task, "headers", json_pack ("{s:s}", "X-Due-Ms", due_text));
    } else if (plan->delayed)
        json_object_set_new (task, "delayUntil",
                             json_string (aq_time_format (aq_time_now_ms () + S_FAR_FUTURE, iso)));
    return task;
}

static void s_fail (s_pump_t *self, int status, const char *error) {
    if (self->failed++ == 0) {
        self->first_status = status;
        snprintf (self->first_error, sizeof self->first_error, "%s", error ? error : "?");
    }
}

//  One connection: keeps up to plan->pipeline creates in flight until its
//  share is answered, paced to its share of plan->rate.
static void *s_pump (void *arg) {
    s_pump_t *self = arg;
    const s_plan_t *plan = self->plan;
    char err[512] = "";
    aq_client_t *client = plan->cert ? aq_client_new_secure (plan->endpoint, plan->cert,
                                                             plan->broker_cert, err, sizeof err)
                                     : aq_client_new (plan->endpoint);
    if (!client) {
        s_fail (self, -1, *err ? err : strerror (errno));
        return NULL;
    }
    aq_client_set_key (client, plan->key);
    aq_client_set_timeout (client, S_STALL_MS);
    bool varies = plan->latency || plan->flow_keys > 0;
    json_t *fixed = varies ? NULL : s_task (plan, 0);
    double rate = plan->rate > 0 ? plan->rate / plan->conns : 0;
    int64_t sent = 0, answered = 0;
    int64_t start = aq_time_mono_ms ();
    while (answered < self->count) {
        int64_t wait = S_STALL_MS;
        while (sent < self->count && sent - answered < plan->pipeline) {
            if (rate > 0) {
                int64_t due = start + (int64_t) ((double) sent * 1000.0 / rate);
                int64_t now = aq_time_mono_ms ();
                if (due > now) {
                    wait = due - now;
                    break;
                }
            }
            json_t *task =
                fixed ? json_incref (fixed) : s_task (plan, sent * plan->conns + self->index);
            json_t *fields = json_pack ("{s:o}", "task", task);
            int64_t corr = aq_client_send (client, AQ_CMD_TASK_CREATE, fields);
            json_decref (fields);
            if (corr < 0) {
                s_fail (self, -1, errno == ENOTCONN ? "cannot reach broker" : strerror (errno));
                goto out;
            }
            sent++;
        }
        if (sent == answered) { //  nothing in flight: just wait for the pace
            usleep ((useconds_t) (wait * 1000));
            continue;
        }
        int64_t corr;
        json_t *reply;
        int status = aq_client_recv (client, &corr, &reply, (int) wait);
        if (status < 0) {
            if (errno == EAGAIN && wait < S_STALL_MS)
                continue;
            s_fail (self, -1, errno == EAGAIN ? "no reply from broker for 30 s" : strerror (errno));
            goto out;
        }
        answered++;
        if (status >= 200 && status < 300)
            self->ok++;
        else
            s_fail (self, status, aq_client_reply_error (reply));
        json_decref (reply);
    }
out:
    json_decref (fixed);
    aq_client_destroy (&client);
    return NULL;
}

//  Runs the plan on plan->conns connections. Returns the number of tasks
//  created and sets *ms to the time it took; prints failures on stderr.
static int64_t s_run (const s_plan_t *plan, int64_t *ms) {
    s_pump_t *pumps = calloc ((size_t) plan->conns, sizeof *pumps);
    int64_t start = aq_time_mono_ms ();
    for (int i = 0; i < plan->conns; i++) {
        pumps[i].plan = plan;
        pumps[i].index = i;
        pumps[i].count = plan->count / plan->conns + (i < plan->count % plan->conns);
        if (pthread_create (&pumps[i].thread, NULL, s_pump, &pumps[i]) != 0) {
            fprintf (stderr, "aq-bench: cannot start a thread\n");
            exit (1);
        }
    }
    int64_t ok = 0, failed = 0;
    for (int i = 0; i < plan->conns; i++) {
        pthread_join (pumps[i].thread, NULL);
        ok += pumps[i].ok;
        failed += pumps[i].failed;
    }
    *ms = aq_time_mono_ms () - start;
    for (int i = 0; i < plan->conns; i++)
        if (pumps[i].failed) {
            fprintf (stderr, "aq-bench: %lld of %lld creates failed, first: %s (%s%d)\n",
                     (long long) failed, (long long) plan->count, pumps[i].first_error,
                     pumps[i].first_status < 0 ? "status " : "HTTP ", pumps[i].first_status);
            break;
        }
    free (pumps);
    return ok;
}

//  --------------------------------------------------------------------------
//  The target's counters over plain HTTP/1.0 (loopback only, no libcurl).

//  GET path on the host and port of url ("http://host:port/..."). Returns the
//  JSON body (caller owns) or NULL.
static json_t *s_http_get (const char *url, const char *path) {
    char host[256], port[16] = "80";
    const char *p = strstr (url, "://");
    p = p ? p + 3 : url;
    size_t len = strcspn (p, ":/");
    if (len == 0 || len >= sizeof host)
        return NULL;
    memcpy (host, p, len);
    host[len] = 0;
    if (p[len] == ':') {
        size_t plen = strcspn (p + len + 1, "/");
        if (plen == 0 || plen >= sizeof port)
            return NULL;
        memcpy (port, p + len + 1, plen);
        port[plen] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo (host, port, &hints, &ai) != 0)
        return NULL;
    json_t *result = NULL;
    char *buf = NULL;
    int fd = socket (ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect (fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto out;
    char request[512];
    int rlen =
        snprintf (request, sizeof request,
                  "GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", path, host, port);
    if (write (fd, request, (size_t) rlen) != rlen)
        goto out;
    size_t size = 0, cap = 65536;
    buf = malloc (cap + 1);
    ssize_t n;
    while ((n = read (fd, buf + size, cap - size)) > 0) {
        size += (size_t) n;
        if (size == cap) {
            cap *= 2;
            buf = realloc (buf, cap + 1);
        }
    }
    buf[size] = 0;
    char *body = strstr (buf, "\r\n\r\n");
    if (strncmp (buf, "HTTP/1.", 7) == 0 && atoi (buf + 9) == 200 && body)
        result = json_loads (body + 4, 0, NULL);
out:
    free (buf);
    if (fd >= 0)
        close (fd);
    freeaddrinfo (ai);
    return result;
}

static int64_t s_target_count (const char *url) {
    json_t *stats = s_http_get (url, "/_stats");
    int64_t count = stats ? aq_field_int (stats, "count", -1) : -1;
    json_decref (stats);
    return count;
}

//  --------------------------------------------------------------------------
//  Round trips

static int s_cmp_ms (const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The p-th fraction of n sorted values.
static double s_percentile (double *values, size_t n, double p) {
    qsort (values, n, sizeof *values, s_cmp_ms);
    size_t at = (size_t) (p * (double) n);
    return n ? values[at < n ? at : n - 1] : 0;
}

//  Milliseconds on the monotonic clock, with fractions.
static double s_now_ms (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static int s_list (s_plan_t *plan, json_t *queries, const char *figure) {
    aq_client_t *client = aq_client_new (plan->endpoint);
    if (!client)
        return 1;
    aq_client_set_key (client, plan->key);
    aq_client_set_timeout (client, S_STALL_MS);
    double *ms = calloc ((size_t) plan->count, sizeof *ms);
    int64_t done = 0, total = 0;
    for (; done < plan->count; done++) {
        json_t *query = json_array_get (queries, (size_t) done % json_array_size (queries));
        json_t *reply = NULL;
        double start = s_now_ms ();
        int status = aq_client_task_list (client, query, &reply);
        ms[done] = s_now_ms () - start;
        if (status != 200) {
            fprintf (stderr, "aq-bench: TASK_LIST -> %d %s\n", status,
                     reply ? aq_client_reply_error (reply) : strerror (errno));
            json_decref (reply);
            break;
        }
        json_t *pagination = json_object_get (aq_client_reply_body (reply), "pagination");
        total += aq_field_int (pagination, "total", 0);
        json_decref (reply);
    }
    aq_client_destroy (&client);
    int rc = done == plan->count ? 0 : 1;
    if (rc == 0) {
        double p99 = s_percentile (ms, (size_t) done, 0.99);
        double p50 = s_percentile (ms, (size_t) done, 0.5), max = ms[done - 1];
        fprintf (stderr,
                 "aq-bench: %lld lists, p50 %.2f ms, max %.2f ms, %.0f tasks matched "
                 "on average\n",
                 (long long) done, p50, max, (double) total / (double) done);
        printf ("bench %s %.2f ms\n", figure, p99);
    }
    free (ms);
    return rc;
}

static volatile sig_atomic_t s_stop; //  SIGTERM or SIGINT: rtt ends early

static void s_on_signal (int sig) {
    (void) sig;
    s_stop = 1;
}

static int s_rtt (s_plan_t *plan, int seconds, const char *figure) {
    signal (SIGTERM, s_on_signal);
    signal (SIGINT, s_on_signal);
    aq_client_t *client = aq_client_new (plan->endpoint);
    if (!client)
        return 1;
    aq_client_set_key (client, plan->key);
    aq_client_set_timeout (client, S_STALL_MS);
    int64_t count = (int64_t) (plan->rate * seconds), sent = 0, answered = 0, failed = 0;
    double *sent_at = calloc ((size_t) count, sizeof *sent_at);
    double *ms = calloc ((size_t) count, sizeof *ms);
    plan->delayed = true;
    plan->target = "http://127.0.0.1:9/never";
    json_t *fields = json_pack ("{s:o}", "task", s_task (plan, 0));
    int64_t first = 0;
    double start = s_now_ms ();
    while (answered < count) {
        double now = s_now_ms ();
        if (s_stop)
            count = sent; //  what was sent is answered, then it ends
        while (sent < count && start + (double) sent * 1000.0 / plan->rate <= now) {
            int64_t corr = aq_client_send (client, AQ_CMD_TASK_CREATE, fields);
            if (corr < 0)
                goto out;
            if (sent == 0)
                first = corr;
            sent_at[sent++] = s_now_ms ();
        }
        double due = sent < count ? start + (double) sent * 1000.0 / plan->rate : now + 1000;
        int wait = (int) (due - now) + 1;
        int64_t corr;
        json_t *reply;
        int status = aq_client_recv (client, &corr, &reply, wait > 0 ? wait : 0);
        if (status < 0) {
            if ((errno == EAGAIN || errno == EINTR) && s_now_ms () - now < S_STALL_MS)
                continue;
            goto out;
        }
        json_decref (reply);
        int64_t i = corr - first;
        if (i >= 0 && i < sent) {
            ms[answered++] = s_now_ms () - sent_at[i];
            failed += status != 201;
        }
    }
out:
    json_decref (fields);
    aq_client_destroy (&client);
    int rc = answered == count && count > 0 ? 0 : 1;
    if (rc == 0) {
        double p99 = s_percentile (ms, (size_t) answered, 0.99);
        double p50 = s_percentile (ms, (size_t) answered, 0.5), max = ms[answered - 1];
        fprintf (stderr,
                 "aq-bench: %lld creates at %.0f/s, p50 %.2f ms, max %.2f ms, %lld failed\n",
                 (long long) answered, plan->rate, p50, max, (long long) failed);
        printf ("bench %s %.2f ms\n", figure, p99);
    } else
        fprintf (stderr, "aq-bench: %lld of %lld creates answered\n", (long long) answered,
                 (long long) count);
    free (sent_at);
    free (ms);
    return rc;
}

//  --------------------------------------------------------------------------

static int s_usage (void) {
    fprintf (
        stderr,
        "usage: aq-bench create  --broker EP --key K --count N [--pipeline P] [--conns C]\n"
        "                        [--cert PATH_secret --broker-cert PATH] (CURVE)\n"
        "       aq-bench e2e     --broker EP --key K --count N --target URL [--max-seconds S]\n"
        "                        [--flow-keys N]\n"
        "       aq-bench latency --broker EP --key K --rate R --seconds S --target URL\n"
        "                        [--figure NAME]\n"
        "       aq-bench fill    --broker EP --key K --count N [--pipeline P] [--conns C]\n"
        "       aq-bench list    --broker EP --key K --count N --query JSON... --figure NAME\n"
        "       aq-bench rtt     --broker EP --key K --rate R --seconds S --figure NAME\n"
        "       aq-bench hold    --broker EP --key K --count N --target URL --flow-key NAME\n");
    return 2;
}

static int s_create (s_plan_t *plan, const char *figure) {
    plan->delayed = true;
    plan->target = plan->target ? plan->target : "http://127.0.0.1:9/never";
    int64_t ms;
    int64_t created = s_run (plan, &ms);
    if (created == 0)
        return 1;
    printf ("bench %s %.0f tasks/s\n", figure, (double) created * 1000.0 / (double) (ms ? ms : 1));
    return 0;
}

//  Tasks of one flow control key (parallelism 1) due now: they wait in the
//  key's queue while it calls one at a time.
static int s_hold (s_plan_t *plan) {
    int64_t ms;
    int64_t created = s_run (plan, &ms);
    if (created == 0)
        return 1;
    fprintf (stderr, "aq-bench: %lld tasks of flow control key '%s' created in %lld ms\n",
             (long long) created, plan->flow_key, (long long) ms);
    return 0;
}

static int s_e2e (s_plan_t *plan, int max_seconds) {
    int64_t base = s_target_count (plan->target);
    if (base < 0) {
        fprintf (stderr, "aq-bench: no counter at '%s/_stats'\n", plan->target);
        return 1;
    }
    int64_t start = aq_time_mono_ms (), ms;
    int64_t created = s_run (plan, &ms);
    if (created == 0)
        return 1;
    int64_t received = 0, last_change = aq_time_mono_ms ();
    for (;;) {
        int64_t count = s_target_count (plan->target);
        int64_t now = aq_time_mono_ms ();
        if (count - base > received)
            received = count - base, last_change = now;
        if (received >= created || now - start > max_seconds * 1000LL ||
            now - last_change > S_STALL_MS)
            break;
        usleep (5000);
    }
    int64_t elapsed = last_change - start;
    if (received < created)
        fprintf (stderr, "aq-bench: target received %lld of %lld callbacks\n", (long long) received,
                 (long long) created);
    fprintf (stderr, "aq-bench: %lld created in %lld ms, %lld callbacks in %lld ms\n",
             (long long) created, (long long) ms, (long long) received, (long long) elapsed);
    printf ("bench %s %.0f callbacks/s\n",
            plan->flow_keys > 0 ? "flow_e2e_callbacks_per_s" : "e2e_callbacks_per_s",
            (double) received * 1000.0 / (double) (elapsed ? elapsed : 1));
    return 0;
}

static int s_latency (s_plan_t *plan, int seconds) {
    json_t *before = s_http_get (plan->target, "/_latency");
    if (!before) {
        fprintf (stderr, "aq-bench: no latency record at '%s/_latency'\n", plan->target);
        return 1;
    }
    int64_t base = aq_field_int (before, "count", 0);
    json_decref (before);
    plan->latency = true;
    plan->conns = 1;
    plan->count = (int64_t) (plan->rate * seconds);
    int64_t ms;
    int64_t created = s_run (plan, &ms);
    if (created == 0)
        return 1;
    //  the last tasks are due S_LATENCY_LEAD after their creation
    json_t *latency = NULL;
    int64_t deadline = aq_time_mono_ms () + S_LATENCY_LEAD + S_STALL_MS;
    for (;;) {
        json_decref (latency);
        latency = s_http_get (plan->target, "/_latency");
        int64_t count = aq_field_int (latency, "count", 0) - base;
        if (count >= created || aq_time_mono_ms () > deadline) {
            if (count < created)
                fprintf (stderr, "aq-bench: target received %lld of %lld due callbacks\n",
                         (long long) count, (long long) created);
            break;
        }
        usleep (20000);
    }
    json_t *p50 = json_object_get (latency, "p50"), *p99 = json_object_get (latency, "p99");
    if (!json_is_number (p50) || !json_is_number (p99)) {
        fprintf (stderr, "aq-bench: '%s/_latency' has no p50/p99\n", plan->target);
        json_decref (latency);
        return 1;
    }
    fprintf (stderr, "aq-bench: %lld tasks at %.0f/s over %lld ms\n", (long long) created,
             plan->rate, (long long) ms);
    if (plan->figure)
        printf ("bench %s %.2f ms\n", plan->figure, json_number_value (p99));
    else {
        printf ("bench dispatch_p50_ms %.2f ms\n", json_number_value (p50));
        printf ("bench dispatch_p99_ms %.2f ms\n", json_number_value (p99));
    }
    json_decref (latency);
    return 0;
}

int main (int argc, char **argv) {
    if (argc < 2)
        return s_usage ();
    const char *mode = argv[1];
    s_plan_t plan = {.pipeline = 200, .conns = 1};
    int seconds = 10, max_seconds = 240;
    const char *figure = NULL;
    json_t *queries = json_array ();
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value || strncmp (name, "--", 2) != 0)
            return s_usage ();
        i++;
        if (strcmp (name, "--broker") == 0)
            plan.endpoint = value;
        else if (strcmp (name, "--key") == 0)
            plan.key = value;
        else if (strcmp (name, "--target") == 0)
            plan.target = value;
        else if (strcmp (name, "--count") == 0)
            plan.count = atoll (value);
        else if (strcmp (name, "--pipeline") == 0)
            plan.pipeline = atoi (value);
        else if (strcmp (name, "--conns") == 0)
            plan.conns = atoi (value);
        else if (strcmp (name, "--rate") == 0)
            plan.rate = atof (value);
        else if (strcmp (name, "--seconds") == 0)
            seconds = atoi (value);
        else if (strcmp (name, "--max-seconds") == 0)
            max_seconds = atoi (value);
        else if (strcmp (name, "--cert") == 0)
            plan.cert = value;
        else if (strcmp (name, "--broker-cert") == 0)
            plan.broker_cert = value;
        else if (strcmp (name, "--figure") == 0)
            figure = value;
        else if (strcmp (name, "--query") == 0) {
            json_t *query = json_loads (value, 0, NULL);
            if (!json_is_object (query))
                return s_usage ();
            json_array_append_new (queries, query);
        } else if (strcmp (name, "--flow-keys") == 0)
            plan.flow_keys = atoi (value);
        else if (strcmp (name, "--flow-key") == 0)
            plan.flow_key = value;
        else
            return s_usage ();
    }
    plan.figure = figure;
    if (!plan.endpoint || !plan.key || plan.pipeline < 1 || plan.conns < 1)
        return s_usage ();
    if (strcmp (mode, "create") == 0 && plan.count > 0)
        return s_create (&plan, plan.cert ? "zmq_create_curve_per_s" : "zmq_create_per_s");
    if (strcmp (mode, "fill") == 0 && plan.count > 0)
        return s_create (&plan, "fill_create_per_s");
    if (strcmp (mode, "e2e") == 0 && plan.count > 0 && plan.target)
        return s_e2e (&plan, max_seconds);
    if (strcmp (mode, "latency") == 0 && plan.rate > 0 && seconds > 0 && plan.target)
        return s_latency (&plan, seconds);
    int rc = 2;
    if (strcmp (mode, "list") == 0 && plan.count > 0 && figure && json_array_size (queries))
        rc = s_list (&plan, queries, figure);
    else if (strcmp (mode, "rtt") == 0 && plan.rate > 0 && seconds > 0 && figure)
        rc = s_rtt (&plan, seconds, figure);
    else if (strcmp (mode, "hold") == 0 && plan.count > 0 && plan.target && plan.flow_key)
        rc = s_hold (&plan);
    json_decref (queries);
    return rc == 2 ? s_usage () : rc;
}
