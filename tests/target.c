/*  target.c - aq-target: a local HTTP callback target for the process tests

    aq-target [--port N] [--threads N] [--keep N]

    Listens on 127.0.0.1 (port 0 = ephemeral), prints `listening <port>` on
    stdout, and serves until SIGTERM or SIGINT. One target serves every test:
    the path chooses the behaviour, and anything after it is free for a test
    to tag its requests (`/ok/test-42` behaves as `/ok`).

        /ok                   200 {"ok":true}
        /status/<code>        that status (3xx carry Location: /redirected)
        /sleep/<ms>           answers 200 after ms, without holding a thread
        /retry-after/<s>      503 with Retry-After: s
        /big/<bytes>          200 with a body of that many bytes
        /json-value/<bytes>   200 {"v": "<that many v's>", "odd": "a b/c?d=e&f#g%h"}
        /fail-first/<n>/<name> 503 for the first n requests naming <name>, then 200
        /throttle/<n>/<s>/<name> 429 with Retry-After: s for the first n requests
                              naming <name>, then 200
        /concurrent/<ms>/<name> answers 200 after ms, counting the requests
                              naming <name> in progress at once (see /_concurrency)
        /wait                 202 with AsyncQueue-Wait: true (the task waits for a signal)
        anything else         200 {"ok":true}

    Every request except the control endpoints is recorded in memory (method,
    path, query, headers with lower-case names, body, arrival ms). The last
    --keep requests (default 200,000, and at most 256 MiB) are kept; counts
    stay exact. A request carrying `X-Due-Ms: <epoch ms>` adds a latency
    sample, arrival minus due.

        GET  /_stats                {"count": n}
        GET  /_requests?path=PREFIX [{"seq","method","path","query","headers",
                                      "body","bodySize","at"}, ...] oldest first
        GET  /_latency              {"count", "p50", "p99", "max"} in ms
        GET  /_concurrency?name=N   {"current", "max", "count"} of /concurrent/<ms>/N:
                                    in progress now, at most at once, in all
        POST /_reset                forgets requests, samples and counters

    libmicrohttpd with an epoll thread pool; /sleep suspends the connection
    and a timer thread resumes it, so hundreds of sleeping calls cost no
    threads.
*/
#include "aq_main.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BODY_KEEP   (256 * 1024)         //  request body bytes kept per record
#define S_STORE_BYTES (256u * 1024 * 1024) //  all kept records together
#define S_SAMPLES_MAX (1u << 22)           //  latency samples kept (reservoir beyond)
#define S_BIG_MAX     ((uint64_t) 1 << 30) //  largest /big body

//  --------------------------------------------------------------------------
//  The recorded requests: a ring of serialized JSON records

typedef struct {
    uint64_t seq; //  arrival order, from 1
    char *path;   //  for the prefix filter
    char *json;   //  the record as JSON text
    size_t size;  //  bytes held by this record
} s_record_t;

typedef struct {
    char *name;   //  the <name> of /fail-first/<n>/<name>
    int64_t seen; //  requests so far
} s_counter_t;

typedef struct {
    char *name;      //  the <name> of /concurrent/<ms>/<name>
    int64_t current; //  requests in progress
    int64_t max;     //  most in progress at once
    int64_t count;   //  requests in all
} s_gauge_t;

typedef struct {
    pthread_mutex_t lock;  //  guards everything below
    s_record_t *ring;      //  capacity `keep`
    size_t keep;           //  ring capacity
    size_t head;           //  index of the oldest record
    size_t size;           //  records held
    size_t bytes;          //  bytes held
    uint64_t count;        //  recorded since the last reset (exact)
    float *samples;        //  latency samples, ms
    size_t nsamples;       //  samples held
    uint64_t nlatency;     //  samples seen since reset (exact)
    double latency_max;    //  largest sample seen
    unsigned rand_state;   //  reservoir sampling
    s_counter_t *counters; //  fail-first counters
    size_t ncounters;      //  counters used
    s_gauge_t *gauges;     //  concurrency gauges
    size_t ngauges;        //  gauges used
} s_store_t;

static s_store_t s_store;

//  --------------------------------------------------------------------------
//  Sleeping connections: a min-heap of wake times served by one thread

typedef struct {
    double wake;                 //  monotonic ms
    struct MHD_Connection *conn; //  suspended connection
} s_sleeper_t;

typedef struct {
    pthread_mutex_t lock;  //  guards the heap and stopping
    pthread_cond_t wakeup; //  heap changed or stopping
    s_sleeper_t *heap;     //  min-heap by wake
    size_t size, alloc;    //  used, allocated
    bool stopping;         //  no more suspensions; resume everything
} s_timer_t;

static s_timer_t s_timer;

//  One request in progress (MHD's per-request closure).
typedef struct {
    char *body;        //  uploaded bytes kept (at most S_BODY_KEEP)
    size_t body_size;  //  uploaded bytes kept
    size_t body_total; //  uploaded bytes seen
    double arrival;    //  wall-clock ms when the request line arrived
    bool sleeping;     //  suspended by /sleep: next call answers
    char *gauge;       //  the /concurrent name it counts in, until it answers
} s_request_t;

static double s_wall_ms (void) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static double s_mono_ms (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

//  --------------------------------------------------------------------------
//  Store helpers (call with s_store.lock held)

static void s_store_drop_oldest (void) {
    s_record_t *rec = &s_store.ring[s_store.head];
    s_store.bytes -= rec->size;
    free (rec->path);
    free (rec->json);
    memset (rec, 0, sizeof *rec);
    s_store.head = (s_store.head + 1) % s_store.keep;
    s_store.size--;
}

static void s_store_clear (void) {
    while (s_store.size)
        s_store_drop_oldest ();
    s_store.head = 0;
    s_store.count = 0;
    s_store.nsamples = 0;
    s_store.nlatency = 0;
    s_store.latency_max = 0;
    for (size_t i = 0; i < s_store.ncounters; i++)
        free (s_store.counters[i].name);
    free (s_store.counters);
    s_store.counters = NULL;
    s_store.ncounters = 0;
    //  gauges of requests still in progress stay, at zero but for those
    for (size_t i = 0; i < s_store.ngauges; i++)
        s_store.gauges[i].max = s_store.gauges[i].count = s_store.gauges[i].current;
}

//  Takes ownership of path and json.
static void s_store_add (char *path, char *json) {
    size_t size = strlen (path) + strlen (json) + sizeof (s_record_t);
    pthread_mutex_lock (&s_store.lock);
    while (s_store.size && (s_store.size == s_store.keep || s_store.bytes + size > S_STORE_BYTES))
        s_store_drop_oldest ();
    size_t slot = (s_store.head + s_store.size) % s_store.keep;
    s_store.ring[slot] = (s_record_t){++s_store.count, path, json, size};
    s_store.size++;
    s_store.bytes += size;
    pthread_mutex_unlock (&s_store.lock);
}

static void s_store_sample (double latency) {
    pthread_mutex_lock (&s_store.lock);
    if (s_store.nlatency == 0 || latency > s_store.latency_max)
        s_store.latency_max = latency;
    s_store.nlatency++;
    if (s_store.nsamples < S_SAMPLES_MAX)
        s_store.samples[s_store.nsamples++] = (float) latency;
    else {
        uint64_t pick = ((uint64_t) rand_r (&s_store.rand_state) << 31 |
                         (uint64_t) rand_r (&s_store.rand_state)) %
                        s_store.nlatency;
        if (pick < S_SAMPLES_MAX)
            s_store.samples[pick] = (float) latency;
    }
    pthread_mutex_unlock (&s_store.lock);
}

//  Counts one request for name; returns how many came before it.
static int64_t s_store_count_name (const char *name) {
    pthread_mutex_lock (&s_store.lock);
    s_counter_t *counter = NULL;
    for (size_t i = 0; i < s_store.ncounters && !counter; i++)
        if (strcmp (s_store.counters[i].name, name) == 0)
            counter = &s_store.counters[i];
    if (!counter) {
        s_counter_t *grown =
            realloc (s_store.counters, (s_store.ncounters + 1) * sizeof (s_counter_t));
        char *copy = strdup (name);
        if (grown && copy) {
            s_store.counters = grown;
            counter = &s_store.counters[s_store.ncounters++];
            *counter = (s_counter_t){copy, 0};
        } else {
            if (grown)
                s_store.counters = grown;
            free (copy);
        }
    }
    int64_t before = counter ? counter->seen++ : 0;
    pthread_mutex_unlock (&s_store.lock);
    return before;
}

//  The gauge of name, made on first use (NULL when out of memory). Call
//  with s_store.lock held.
static s_gauge_t *s_gauge (const char *name) {
    for (size_t i = 0; i < s_store.ngauges; i++)
        if (strcmp (s_store.gauges[i].name, name) == 0)
            return &s_store.gauges[i];
    s_gauge_t *grown = realloc (s_store.gauges, (s_store.ngauges + 1) * sizeof (s_gauge_t));
    char *copy = strdup (name);
    if (!grown || !copy) {
        if (grown)
            s_store.gauges = grown;
        free (copy);
        return NULL;
    }
    s_store.gauges = grown;
    s_gauge_t *gauge = &s_store.gauges[s_store.ngauges++];
    *gauge = (s_gauge_t){copy, 0, 0, 0};
    return gauge;
}

//  A /concurrent request starts (delta 1) or ends (-1).
static void s_gauge_add (const char *name, int delta) {
    pthread_mutex_lock (&s_store.lock);
    s_gauge_t *gauge = s_gauge (name);
    if (gauge) {
        gauge->current += delta;
        if (delta > 0)
            gauge->count++;
        if (gauge->current > gauge->max)
            gauge->max = gauge->current;
    }
    pthread_mutex_unlock (&s_store.lock);
}

//  --------------------------------------------------------------------------
//  Timer: sleeping connections

static void s_heap_swap (size_t a, size_t b) {
    s_sleeper_t tmp = s_timer.heap[a];
    s_timer.heap[a] = s_timer.heap[b];
    s_timer.heap[b] = tmp;
}

static int s_heap_push (double wake, struct MHD_Connection *conn) {
    if (s_timer.size == s_timer.alloc) {
        size_t alloc = s_timer.alloc ? s_timer.alloc * 2 : 256;
        s_sleeper_t *heap = realloc (s_timer.heap, alloc * sizeof *heap);
        if (!heap)
            return -1;
        s_timer.heap = heap;
        s_timer.alloc = alloc;
    }
    size_t at = s_timer.size++;
    s_timer.heap[at] = (s_sleeper_t){wake, conn};
    while (at && s_timer.heap[(at - 1) / 2].wake > s_timer.heap[at].wake) {
        s_heap_swap (at, (at - 1) / 2);
        at = (at - 1) / 2;
    }
    return 0;
}

static struct MHD_Connection *s_heap_pop (void) {
    struct MHD_Connection *conn = s_timer.heap[0].conn;
    s_timer.heap[0] = s_timer.heap[--s_timer.size];
    size_t at = 0;
    for (;;) {
        size_t left = 2 * at + 1, right = left + 1, least = at;
        if (left < s_timer.size && s_timer.heap[left].wake < s_timer.heap[least].wake)
            least = left;
        if (right < s_timer.size && s_timer.heap[right].wake < s_timer.heap[least].wake)
            least = right;
        if (least == at)
            break;
        s_heap_swap (at, least);
        at = least;
    }
    return conn;
}

//  Resumes every connection whose time has come; all of them once stopping.
static void *s_timer_run (void *arg) {
    (void) arg;
    pthread_mutex_lock (&s_timer.lock);
    for (;;) {
        double now = s_mono_ms ();
        while (s_timer.size && (s_timer.stopping || s_timer.heap[0].wake <= now))
            MHD_resume_connection (s_heap_pop ());
        if (s_timer.stopping)
            break;
        if (s_timer.size == 0)
            pthread_cond_wait (&s_timer.wakeup, &s_timer.lock);
        else {
            double wake = s_timer.heap[0].wake - now;
            struct timespec ts;
            clock_gettime (CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (int64_t) (wake * 1e6);
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait (&s_timer.wakeup, &s_timer.lock, &ts);
        }
    }
    pthread_mutex_unlock (&s_timer.lock);
    return NULL;
}

//  Suspends conn for ms. Returns 0, or -1 when stopping (answer at once).
static int s_timer_sleep (struct MHD_Connection *conn, double ms) {
    int rc = -1;
    pthread_mutex_lock (&s_timer.lock);
    if (!s_timer.stopping && s_heap_push (s_mono_ms () + ms, conn) == 0) {
        MHD_suspend_connection (conn);
        pthread_cond_signal (&s_timer.wakeup);
        rc = 0;
    }
    pthread_mutex_unlock (&s_timer.lock);
    return rc;
}

//  --------------------------------------------------------------------------
//  Responses

static enum MHD_Result s_reply (struct MHD_Connection *conn, unsigned code, const char *type,
                                const char *text) {
    struct MHD_Response *response =
        MHD_create_response_from_buffer (strlen (text), (void *) text, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    if (type && *text)
        MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response (conn, code, response);
    MHD_destroy_response (response);
    return rc;
}

//  Takes ownership of value.
static enum MHD_Result s_reply_json (struct MHD_Connection *conn, unsigned code, json_t *value) {
    char *text = value ? json_dumps (value, JSON_COMPACT | JSON_REAL_PRECISION (6)) : NULL;
    json_decref (value);
    if (!text)
        return s_reply (conn, 500, "text/plain", "out of memory");
    enum MHD_Result rc = s_reply (conn, code, "application/json", text);
    free (text);
    return rc;
}

static ssize_t s_big_reader (void *cls, uint64_t pos, char *buf, size_t max) {
    (void) cls;
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < max; i++)
        buf[i] = letters[(pos + i) % 26];
    return (ssize_t) max;
}

static enum MHD_Result s_reply_big (struct MHD_Connection *conn, uint64_t size) {
    struct MHD_Response *response =
        MHD_create_response_from_callback (size, 64 * 1024, s_big_reader, NULL, NULL);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", "text/plain");
    enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result s_reply_ok (struct MHD_Connection *conn) {
    return s_reply (conn, MHD_HTTP_OK, "application/json", "{\"ok\":true}");
}

//  --------------------------------------------------------------------------
//  Recording a request

static enum MHD_Result s_collect_header (void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value) {
    (void) kind;
    json_t *headers = (json_t *) cls;
    char name[256];
    size_t len = strlen (key);
    if (len >= sizeof name)
        len = sizeof name - 1;
    for (size_t i = 0; i < len; i++)
        name[i] = (char) ((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    name[len] = 0;
    const char *prior = json_string_value (json_object_get (headers, name));
    if (prior) {
        char *joined = NULL;
        if (asprintf (&joined, "%s, %s", prior, value ? value : "") > 0) {
            json_object_set_new (headers, name, json_string (joined));
            free (joined);
        }
    } else
        json_object_set_new (headers, name, json_string (value ? value : ""));
    return MHD_YES;
}

static enum MHD_Result s_collect_arg (void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void) kind;
    char **query = (char **) cls;
    char *grown = NULL;
    if (asprintf (&grown, "%s%s%s%s%s", *query ? *query : "", *query ? "&" : "", key,
                  value ? "=" : "", value ? value : "") > 0) {
        free (*query);
        *query = grown;
    }
    return MHD_YES;
}

//  A string of text with every byte that is not valid UTF-8 replaced by '?'.
static json_t *s_text (const char *data, size_t size) {
    json_t *value = json_stringn (data ? data : "", size);
    if (value)
        return value;
    char *copy = malloc (size + 1);
    if (!copy)
        return NULL;
    memcpy (copy, data, size);
    size_t i = 0;
    while (i < size) {
        unsigned char c = (unsigned char) copy[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= size;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char) copy[i + k] >> 6) == 2;
        if (ok && n > 1 && !json_stringn (copy + i, n)) //  overlong or surrogate
            ok = false;
        if (!ok) {
            copy[i] = '?';
            n = 1;
        }
        i += n;
    }
    value = json_stringn (copy, size);
    free (copy);
    return value;
}

static void s_record (struct MHD_Connection *conn, const char *method, const char *url,
                      s_request_t *req) {
    json_t *headers = json_object ();
    MHD_get_connection_values (conn, MHD_HEADER_KIND, s_collect_header, headers);
    char *query = NULL;
    MHD_get_connection_values (conn, MHD_GET_ARGUMENT_KIND, s_collect_arg, &query);
    json_t *record = json_object ();
    json_object_set_new (record, "method", json_string (method));
    json_object_set_new (record, "path", s_text (url, strlen (url)));
    if (query)
        json_object_set_new (record, "query", s_text (query, strlen (query)));
    json_object_set_new (record, "headers", headers);
    json_object_set_new (record, "body", s_text (req->body, req->body_size));
    json_object_set_new (record, "bodySize", json_integer ((json_int_t) req->body_total));
    json_object_set_new (record, "at", json_integer ((json_int_t) req->arrival));
    free (query);

    const char *due = json_string_value (json_object_get (headers, "x-due-ms"));
    if (due) {
        char *end;
        double due_ms = strtod (due, &end);
        if (end != due)
            s_store_sample (req->arrival - due_ms);
    }
    //  the record's text leaves out seq, added when listing
    char *json = json_dumps (record, JSON_COMPACT);
    char *path = strdup (url);
    json_decref (record);
    if (json && path)
        s_store_add (path, json);
    else {
        free (json);
        free (path);
    }
}

//  --------------------------------------------------------------------------
//  Control endpoints

static enum MHD_Result s_control_requests (struct MHD_Connection *conn) {
    const char *prefix = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "path");
    size_t prefix_len = prefix ? strlen (prefix) : 0;
    //  render under the lock into one growing buffer
    size_t alloc = 4096, used = 0;
    char *text = malloc (alloc);
    bool ok = text != NULL;
    if (ok)
        text[used++] = '[';
    pthread_mutex_lock (&s_store.lock);
    for (size_t i = 0; ok && i < s_store.size; i++) {
        s_record_t *rec = &s_store.ring[(s_store.head + i) % s_store.keep];
        if (prefix && strncmp (rec->path, prefix, prefix_len) != 0)
            continue;
        char seq[48];
        int seq_len = snprintf (seq, sizeof seq, "{\"seq\":%llu,", (unsigned long long) rec->seq);
        size_t len = strlen (rec->json);
        size_t need = used + (size_t) seq_len + len + 4;
        if (need > alloc) {
            while (alloc < need)
                alloc *= 2;
            char *grown = realloc (text, alloc);
            if (!grown) {
                ok = false;
                break;
            }
            text = grown;
        }
        if (text[used - 1] != '[')
            text[used++] = ',';
        memcpy (text + used, seq, (size_t) seq_len);
        used += (size_t) seq_len;
        memcpy (text + used, rec->json + 1, len - 1); //  skip the record's '{'
        used += len - 1;
    }
    pthread_mutex_unlock (&s_store.lock);
    if (!ok) {
        free (text);
        return s_reply (conn, 500, "text/plain", "out of memory");
    }
    text[used++] = ']';
    struct MHD_Response *response =
        MHD_create_response_from_buffer (used, text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

static int s_float_cmp (const void *a, const void *b) {
    float x = *(const float *) a, y = *(const float *) b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static enum MHD_Result s_control_latency (struct MHD_Connection *conn) {
    pthread_mutex_lock (&s_store.lock);
    size_t n = s_store.nsamples;
    uint64_t count = s_store.nlatency;
    double max = s_store.latency_max;
    float *copy = n ? malloc (n * sizeof (float)) : NULL;
    if (copy)
        memcpy (copy, s_store.samples, n * sizeof (float));
    pthread_mutex_unlock (&s_store.lock);
    if (n && !copy)
        return s_reply (conn, 500, "text/plain", "out of memory");
    double p50 = 0, p99 = 0;
    if (n) {
        qsort (copy, n, sizeof (float), s_float_cmp);
        p50 = copy[(size_t) ((double) (n - 1) * 0.50 + 0.5)];
        p99 = copy[(size_t) ((double) (n - 1) * 0.99 + 0.5)];
    }
    free (copy);
    return s_reply_json (conn, MHD_HTTP_OK,
                         json_pack ("{s:I, s:f, s:f, s:f}", "count", (json_int_t) count, "p50", p50,
                                    "p99", p99, "max", count ? max : 0.0));
}

static enum MHD_Result s_control (struct MHD_Connection *conn, const char *method,
                                  const char *url) {
    if (strcmp (url, "/_stats") == 0) {
        pthread_mutex_lock (&s_store.lock);
        json_int_t count = (json_int_t) s_store.count;
        pthread_mutex_unlock (&s_store.lock);
        return s_reply_json (conn, MHD_HTTP_OK, json_pack ("{s:I}", "count", count));
    }
    if (strcmp (url, "/_requests") == 0)
        return s_control_requests (conn);
    if (strcmp (url, "/_latency") == 0)
        return s_control_latency (conn);
    if (strcmp (url, "/_concurrency") == 0) {
        const char *name = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "name");
        pthread_mutex_lock (&s_store.lock);
        s_gauge_t *gauge = s_gauge (name ? name : "");
        json_t *doc =
            gauge ? json_pack ("{s:I, s:I, s:I}", "current", (json_int_t) gauge->current, "max",
                               (json_int_t) gauge->max, "count", (json_int_t) gauge->count)
                  : NULL;
        pthread_mutex_unlock (&s_store.lock);
        return s_reply_json (conn, MHD_HTTP_OK, doc);
    }
    if (strcmp (url, "/_reset") == 0) {
        if (strcmp (method, "POST") != 0)
            return s_reply (conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "use POST");
        pthread_mutex_lock (&s_store.lock);
        s_store_clear ();
        pthread_mutex_unlock (&s_store.lock);
        return s_reply_ok (conn);
    }
    return s_reply (conn, MHD_HTTP_NOT_FOUND, "text/plain", "unknown control endpoint");
}

//  --------------------------------------------------------------------------
//  Behaviours chosen by path

//  If url is "<prefix><number>..." sets *number and *rest (after the number,
//  at '/' or the end) and returns true.
static bool s_route (const char *url, const char *prefix, long long *number, const char **rest) {
    size_t len = strlen (prefix);
    if (strncmp (url, prefix, len) != 0)
        return false;
    const char *digits = url + len;
    char *end;
    errno = 0;
    long long value = strtoll (digits, &end, 10);
    if (end == digits || errno || value < 0 || (*end && *end != '/'))
        return false;
    *number = value;
    *rest = end;
    return true;
}

static enum MHD_Result s_behave (struct MHD_Connection *conn, const char *url, s_request_t *req) {
    long long number;
    const char *rest;
    if (s_route (url, "/status/", &number, &rest)) {
        if (number < 100 || number > 599)
            return s_reply (conn, MHD_HTTP_BAD_REQUEST, "text/plain", "status out of range");
        bool empty = number < 200 || number == 204 || number == 304;
        char text[64];
        snprintf (text, sizeof text, "{\"status\":%lld}", number);
        struct MHD_Response *response = MHD_create_response_from_buffer (
            empty ? 0 : strlen (text), text, MHD_RESPMEM_MUST_COPY);
        if (!response)
            return MHD_NO;
        if (!empty)
            MHD_add_response_header (response, "Content-Type", "application/json");
        if (number >= 300 && number < 400)
            MHD_add_response_header (response, "Location", "/redirected");
        enum MHD_Result rc = MHD_queue_response (conn, (unsigned) number, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (s_route (url, "/sleep/", &number, &rest)) {
        if (!req->sleeping && number > 0) {
            req->sleeping = true;
            if (s_timer_sleep (conn, (double) number) == 0)
                return MHD_YES; //  resumed later: called again, and answers
        }
        return s_reply_ok (conn);
    }
    if (s_route (url, "/retry-after/", &number, &rest)) {
        char text[64];
        snprintf (text, sizeof text, "%lld", number);
        struct MHD_Response *response =
            MHD_create_response_from_buffer (15, "{\"retry\":true}\n", MHD_RESPMEM_PERSISTENT);
        if (!response)
            return MHD_NO;
        MHD_add_response_header (response, "Retry-After", text);
        MHD_add_response_header (response, "Content-Type", "application/json");
        enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_SERVICE_UNAVAILABLE, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (strncmp (url, "/wait", 5) == 0 && (url[5] == '\0' || url[5] == '/')) {
        struct MHD_Response *response =
            MHD_create_response_from_buffer (17, "{\"accepted\":true}", MHD_RESPMEM_PERSISTENT);
        if (!response)
            return MHD_NO;
        MHD_add_response_header (response, "AsyncQueue-Wait", "true");
        MHD_add_response_header (response, "Content-Type", "application/json");
        enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_ACCEPTED, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (s_route (url, "/big/", &number, &rest)) {
        if ((uint64_t) number > S_BIG_MAX)
            return s_reply (conn, MHD_HTTP_BAD_REQUEST, "text/plain", "too big");
        return s_reply_big (conn, (uint64_t) number);
    }
    if (s_route (url, "/json-value/", &number, &rest)) {
        if ((uint64_t) number > S_BIG_MAX)
            return s_reply (conn, MHD_HTTP_BAD_REQUEST, "text/plain", "too big");
        char *value = malloc ((size_t) number + 1);
        if (!value)
            return s_reply (conn, 500, "text/plain", "out of memory");
        memset (value, 'v', (size_t) number);
        value[number] = '\0';
        json_t *doc = json_pack ("{s:s, s:s}", "v", value, "odd", "a b/c?d=e&f#g%h");
        free (value);
        return s_reply_json (conn, MHD_HTTP_OK, doc);
    }
    if (s_route (url, "/concurrent/", &number, &rest)) {
        if (!req->sleeping) {
            req->sleeping = true;
            req->gauge = strdup (*rest == '/' ? rest + 1 : "");
            if (req->gauge)
                s_gauge_add (req->gauge, 1);
            if (number > 0 && s_timer_sleep (conn, (double) number) == 0)
                return MHD_YES; //  resumed later: called again, and answers
        }
        if (req->gauge) {
            s_gauge_add (req->gauge, -1);
            free (req->gauge);
            req->gauge = NULL;
        }
        return s_reply_ok (conn);
    }
    if (s_route (url, "/throttle/", &number, &rest)) {
        char *end = (char *) rest;
        long long seconds = *rest == '/' ? strtoll (rest + 1, &end, 10) : -1;
        if (seconds < 0 || (*end && *end != '/'))
            return s_reply (conn, MHD_HTTP_BAD_REQUEST, "text/plain", "use /throttle/N/S/NAME");
        char name[300];
        snprintf (name, sizeof name, "throttle:%s", *end == '/' ? end + 1 : "");
        if (s_store_count_name (name) >= number)
            return s_reply_ok (conn);
        char text[32];
        snprintf (text, sizeof text, "%lld", seconds);
        struct MHD_Response *response =
            MHD_create_response_from_buffer (18, "{\"throttled\":true}", MHD_RESPMEM_PERSISTENT);
        if (!response)
            return MHD_NO;
        MHD_add_response_header (response, "Retry-After", text);
        MHD_add_response_header (response, "Content-Type", "application/json");
        enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_TOO_MANY_REQUESTS, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (s_route (url, "/fail-first/", &number, &rest)) {
        const char *name = *rest == '/' ? rest + 1 : "";
        if (s_store_count_name (name) < number)
            return s_reply (conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                            "{\"ok\":false}");
        return s_reply_ok (conn);
    }
    return s_reply_ok (conn);
}

//  --------------------------------------------------------------------------
//  libmicrohttpd callbacks

static enum MHD_Result s_access (void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
    (void) cls;
    (void) version;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->arrival = s_wall_ms ();
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        req->body_total += size;
        size_t room = S_BODY_KEEP - req->body_size;
        size_t take = size < room ? size : room;
        if (take) {
            char *grown = realloc (req->body, req->body_size + take);
            if (!grown)
                return MHD_NO;
            req->body = grown;
            memcpy (req->body + req->body_size, upload_data, take);
            req->body_size += take;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strncmp (url, "/_", 2) == 0)
        return s_control (conn, method, url);
    if (!req->sleeping)
        s_record (conn, method, url, req);
    return s_behave (conn, url, req);
}

static void s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code) {
    (void) cls;
    (void) conn;
    (void) code;
    s_request_t *req = *con_cls;
    if (req && req->gauge) //  ended before it answered
        s_gauge_add (req->gauge, -1);
    if (req) {
        free (req->gauge);
        free (req->body);
        free (req);
        *con_cls = NULL;
    }
}

static void s_usage (void) {
    fprintf (stderr, "usage: aq-target [--port N] [--threads N] [--keep N]\n");
    exit (2);
}

int main (int argc, char **argv) {
    long port = 0, threads = 2, keep = 200000;
    for (int i = 1; i < argc; i++) {
        long *option = strcmp (argv[i], "--port") == 0      ? &port
                       : strcmp (argv[i], "--threads") == 0 ? &threads
                       : strcmp (argv[i], "--keep") == 0    ? &keep
                                                            : NULL;
        if (!option || i + 1 >= argc)
            s_usage ();
        char *end;
        *option = strtol (argv[++i], &end, 10);
        if (*end || *option < 0)
            s_usage ();
    }
    if (port > 65535 || threads < 1 || threads > 64 || keep < 1)
        s_usage ();

    //  signals are taken by sigwait below; no thread gets them
    sigset_t signals;
    aq_main_block_signals (&signals);

    pthread_mutex_init (&s_store.lock, NULL);
    s_store.keep = (size_t) keep;
    s_store.ring = calloc (s_store.keep, sizeof (s_record_t));
    s_store.samples = malloc (S_SAMPLES_MAX * sizeof (float));
    s_store.rand_state = 42;
    pthread_mutex_init (&s_timer.lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&s_timer.wakeup, &attr);
    pthread_condattr_destroy (&attr);
    if (!s_store.ring || !s_store.samples) {
        fprintf (stderr, "aq-target: out of memory\n");
        return 1;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t) port, NULL, NULL, s_access, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned) 8192, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
        NULL, MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr, "aq-target: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    pthread_t timer;
    if (pthread_create (&timer, NULL, s_timer_run, NULL) != 0) {
        fprintf (stderr, "aq-target: cannot start the timer thread\n");
        MHD_stop_daemon (daemon);
        return 1;
    }
    printf ("listening %u\n", info ? (unsigned) info->port : (unsigned) port);
    fflush (stdout);

    int sig = 0;
    sigwait (&signals, &sig);

    //  stop suspending, resume every sleeper, then stop the daemon
    pthread_mutex_lock (&s_timer.lock);
    s_timer.stopping = true;
    pthread_cond_signal (&s_timer.wakeup);
    pthread_mutex_unlock (&s_timer.lock);
    pthread_join (timer, NULL);
    MHD_stop_daemon (daemon);

    pthread_mutex_lock (&s_store.lock);
    s_store_clear ();
    for (size_t i = 0; i < s_store.ngauges; i++)
        free (s_store.gauges[i].name);
    free (s_store.gauges);
    pthread_mutex_unlock (&s_store.lock);
    free (s_store.ring);
    free (s_store.samples);
    free (s_timer.heap);
    pthread_mutex_destroy (&s_store.lock);
    pthread_mutex_destroy (&s_timer.lock);
    pthread_cond_destroy (&s_timer.wakeup);
    return 0;
}
