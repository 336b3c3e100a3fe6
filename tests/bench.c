/*  bench.c - aq-bench: load generator for the broker's client protocol

    aq-bench create   --broker EP --key K --count N [--pipeline P] [--conns C]
    aq-bench e2e      --broker EP --key K --count N --target URL [--pipeline P] [--conns C]
    aq-bench latency  --broker EP --key K --rate R --seconds S --target URL
    aq-bench fill     --broker EP --key K --count N [--pipeline P] [--conns C]

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
} s_plan_t;

typedef struct {
    const s_plan_t *plan;  //  what to do
    int64_t count;         //  this connection's share
    int64_t ok;            //  2xx replies
    int64_t failed;        //  other replies
    int first_status;      //  first failure's status (-1: transport)
    char first_error[200]; //  and its message
    pthread_t thread;      //  runs s_pump
} s_pump_t;

static json_t *s_task (const s_plan_t *plan) {
    json_t *task = json_pack ("{s:s}", "targetUrl", plan->target);
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
    json_t *fixed = plan->latency ? NULL : s_task (plan);
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
            json_t *task = fixed ? json_incref (fixed) : s_task (plan);
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

static int s_usage (void) {
    fprintf (
        stderr,
        "usage: aq-bench create  --broker EP --key K --count N [--pipeline P] [--conns C]\n"
        "                        [--cert PATH_secret --broker-cert PATH] (CURVE)\n"
        "       aq-bench e2e     --broker EP --key K --count N --target URL [--max-seconds S]\n"
        "       aq-bench latency --broker EP --key K --rate R --seconds S --target URL\n"
        "       aq-bench fill    --broker EP --key K --count N [--pipeline P] [--conns C]\n");
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
    printf ("bench e2e_callbacks_per_s %.0f callbacks/s\n",
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
    printf ("bench dispatch_p50_ms %.2f ms\n", json_number_value (p50));
    printf ("bench dispatch_p99_ms %.2f ms\n", json_number_value (p99));
    json_decref (latency);
    return 0;
}

int main (int argc, char **argv) {
    if (argc < 2)
        return s_usage ();
    const char *mode = argv[1];
    s_plan_t plan = {.pipeline = 200, .conns = 1};
    int seconds = 10, max_seconds = 240;
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
        else
            return s_usage ();
    }
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
    return s_usage ();
}
