/*  http.c - libmicrohttpd glue: HTTP requests held while the broker answers

    The only file that includes <microhttpd.h>. The daemon runs in external
    mode on its epoll set, so its one fd joins the caller's zmq_poll. A
    complete request is translated (routes.c); if it needs the broker, the
    request is sent with a fresh correlation id and held, and the corr ->
    request table finds it again when the REPLY comes in (no pointer ever
    goes on the wire). A long poll is a suspended connection and a table
    entry: no thread, no buffer beyond MHD's. A request the broker answers
    within a turn is held without suspending (see s_hold).

    Limits, because libmicrohttpd has no absolute timeout of its own:
    - a body over max_body is refused from Content-Length before it is read,
      and a chunked one is thrown away once it passes the limit (413 when
      it ends, connection closed if it goes on much longer);
    - every connection must deliver its current request within
      request_deadline_s of the previous one ending (or of connecting), and
      read its response as fast; a client trickling bytes is shut down;
    - a request held for the broker gets 503 after wait + 10 s;
    - header size (MHD's per-connection memory), idle timeout, connection
      counts in total and per address are MHD options. MHD zeroes all of a
      connection's memory after each request, so a kept-alive connection
      holds S_MEMORY_LIMIT resident: 16 KiB, ample for an API request's
      headers, rather than more.
*/
#include "http.h"
#include "listen.h"
#include "routes.h"
#include "ui.h"

#include "aq_log.h"
#include "aq_codec.h"
#include "aq_time.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#define S_SWEEP_MS     250       //  deadlines are checked this often
#define S_PING_MS      1000      //  an idle broker is pinged this often
#define S_PING_SLOW_MS 5000      //  and this often while it does not answer
#define S_FRESH_MS     3000      //  /healthz, /readyz: the broker spoke this recently
#define S_GRACE_S      10        //  a reply may take the long poll's wait + this
#define S_MEMORY_LIMIT 16384     //  per connection: request line, headers, read buffer
#define S_DISCARD_MAX  (4 << 20) //  body bytes thrown away past max_body before closing
#define S_BUCKETS      1024      //  initial size of the corr table (a power of two)
#define S_BRIEF_MS     10        //  a request is held this long before it is suspended
#define S_BRIEF_TICK   1         //  how often MHD runs while such requests are held

typedef struct _s_conn_t s_conn_t;
typedef struct _s_request_t s_request_t;

//  One TCP connection, from MHD's NOTIFY_CONNECTION.
struct _s_conn_t {
    s_conn_t *prev, *next; //  in gw_http_t.conns
    int fd;                //  its socket, shut down to cut it off
    int64_t deadline;      //  mono ms the current exchange must end by, 0 while held
    bool cut;              //  shut down already
};

enum { S_RECEIVING, S_HELD, S_ANSWERED, S_DONE };

//  One HTTP request, MHD's con_cls.
struct _s_request_t {
    struct MHD_Connection *connection; //  MHD's
    s_conn_t *conn;                    //  its connection's record, or NULL
    s_request_t *chain;                //  next in its corr bucket
    const gw_route_t *route;           //  matched route, NULL for 404/405
    const char *method;                //  MHD's, valid while the request lives
    const char *url;                   //  idem
    uint64_t corr;                     //  correlation id while held
    int64_t started;                   //  mono ms of the first callback
    int64_t expires;                   //  mono ms to give up on the broker
    int64_t held_at;                   //  mono ms it was sent to the broker
    int state;                         //  S_RECEIVING .. S_DONE
    bool keep_body;                    //  the route takes a body
    bool suspended;                    //  held with MHD_suspend_connection
    bool too_large;                    //  body over max_body: 413
    char *body;                        //  received body, malloc'd
    size_t body_size;                  //  bytes in body
    size_t body_cap;                   //  bytes allocated
    size_t received;                   //  body bytes seen, kept or not
    gw_response_t response;            //  the answer, once known
};

struct _gw_http_t {
    struct MHD_Daemon *daemon; //  external mode, epoll, suspend/resume
    void *dealer;              //  to the broker (borrowed)
    size_t max_body;           //  request body limit in bytes
    int64_t deadline_ms;       //  per-request deadline
    bool verbose;              //  log every request
    int port;                  //  bound TCP port
    uint64_t next_corr;        //  last correlation id used
    s_request_t **table;       //  corr -> held request, chained
    size_t buckets;            //  table size, a power of two
    size_t held;               //  requests in the table
    size_t brief;              //  of which held without suspending
    bool answered;             //  one of those was answered since MHD last ran
    s_conn_t *conns;           //  open connections
    size_t connections;        //  how many
    uint64_t cutoffs;          //  connections cut off by the deadline
    int64_t broker_seen;       //  mono ms of the broker's last message, 0 never
    int64_t last_ping;         //  mono ms of our last HEARTBEAT
    int64_t next_sweep;        //  mono ms of the next deadline check
};

//  --------------------------------------------------------------------------
//  The requests libmicrohttpd refuses by itself
//
//  MHD answers a request it cannot parse or hold without calling us: 414
//  (request line over its per-connection memory), 431 (headers over it),
//  400 (malformed request line, header, chunked encoding or
//  Content-Length; a missing Host with HTTP/1.1 when strict), 413 (a
//  chunk size or Content-Length beyond what it can count), 505 (HTTP/0.9
//  or 2.x) and 500 (it ran out of pool), each with a fixed HTML page
//  (connection.c, transmit_error_response_len, in 0.9.75). It has no
//  option or callback to change that page. It queues it through its
//  exported MHD_queue_response, called by way of the library's PLT, so the
//  gateway defines that symbol itself: the dynamic linker binds the
//  library's own call to this definition, which puts an {"error": ...}
//  body in place of the page and passes everything to the library's
//  function (dlsym RTLD_NEXT). The gateway's own answers call that
//  function directly (s_queue). If a libmicrohttpd bound its internal call
//  directly, its HTML would come back: tests/test_gateway_limits.py checks
//  each status.

typedef enum MHD_Result (*s_queue_fn) (struct MHD_Connection *, unsigned int,
                                       struct MHD_Response *);

static enum MHD_Result s_queue (struct MHD_Connection *connection, unsigned int status,
                                struct MHD_Response *response) {
    static s_queue_fn library;
    if (!library) {
        library = (s_queue_fn) dlsym (RTLD_NEXT, "MHD_queue_response");
        assert (library); //  libmicrohttpd is a shared library on every target
    }
    return library (connection, status, response);
}

//  The client message for a status MHD answers by itself.
static const char *s_refusal (unsigned int status) {
    switch (status) {
    case 400:
        return "Malformed HTTP request";
    case 413:
        return "Request body too large";
    case 414:
        return "URI too long";
    case 431:
        return "Request header fields too large";
    case 505:
        return "HTTP version not supported";
    default:
        return status < 500 ? "Request refused" : "Internal error";
    }
}

enum MHD_Result MHD_queue_response (struct MHD_Connection *connection, unsigned int status_code,
                                    struct MHD_Response *response) {
    gw_response_t answer = {0};
    struct MHD_Response *json = NULL;
    if (status_code >= 400 &&
        gw_response_error (&answer, (int) status_code, s_refusal (status_code)) == 0) {
        json =
            MHD_create_response_from_buffer (answer.body_size, answer.body, MHD_RESPMEM_MUST_FREE);
        if (json) {
            answer.body = NULL; //  MHD frees it
            MHD_add_response_header (json, MHD_HTTP_HEADER_CONTENT_TYPE, answer.content_type);
        }
    }
    gw_response_release (&answer);
    enum MHD_Result rc = s_queue (connection, status_code, json ? json : response);
    if (json)
        MHD_destroy_response (json);
    return rc;
}

//  --------------------------------------------------------------------------
//  corr -> request table

static void s_table_grow (gw_http_t *self) {
    size_t buckets = self->buckets * 2;
    s_request_t **table = calloc (buckets, sizeof *table);
    if (!table)
        return; //  longer chains, still correct
    for (size_t i = 0; i < self->buckets; i++) {
        s_request_t *req = self->table[i];
        while (req) {
            s_request_t *next = req->chain;
            size_t slot = req->corr & (buckets - 1);
            req->chain = table[slot];
            table[slot] = req;
            req = next;
        }
    }
    free (self->table);
    self->table = table;
    self->buckets = buckets;
}

static void s_table_put (gw_http_t *self, s_request_t *req) {
    if (self->held >= self->buckets * 2)
        s_table_grow (self);
    size_t slot = req->corr & (self->buckets - 1);
    req->chain = self->table[slot];
    self->table[slot] = req;
    self->held++;
}

//  Removes and returns the request held under corr, or NULL.
static s_request_t *s_table_take (gw_http_t *self, uint64_t corr) {
    s_request_t **link = &self->table[corr & (self->buckets - 1)];
    for (; *link; link = &(*link)->chain) {
        s_request_t *req = *link;
        if (req->corr == corr) {
            *link = req->chain;
            req->chain = NULL;
            self->held--;
            return req;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Answering

static bool s_broker_ok (gw_http_t *self) {
    return self->broker_seen && aq_time_mono_ms () - self->broker_seen <= S_FRESH_MS;
}

//  Queues response with status for req (destroying our reference) and
//  starts the deadline for the client to read it.
static enum MHD_Result s_send (gw_http_t *self, s_request_t *req, struct MHD_Response *response,
                               int status) {
    enum MHD_Result rc = s_queue (req->connection, (unsigned) status, response);
    MHD_destroy_response (response);
    req->state = S_DONE;
    int64_t now = aq_time_mono_ms ();
    if (req->conn && !req->conn->cut)
        req->conn->deadline = now + self->deadline_ms; //  to read the response
    if (self->verbose)
        aq_log (AQ_LOG_INFO, "gateway", "%s %s %d %lld ms", req->method, req->url, status,
                (long long) (now - req->started));
    return rc;
}

//  Queues req->response (taking its body). On the first callback this also
//  makes MHD close the connection after it, without reading the body.
static enum MHD_Result s_answer (gw_http_t *self, s_request_t *req) {
    gw_response_t *answer = &req->response;
    if (!answer->body && gw_response_error (answer, 500, "Internal error") != 0)
        return MHD_NO;
    struct MHD_Response *response =
        MHD_create_response_from_buffer (answer->body_size, answer->body, MHD_RESPMEM_MUST_FREE);
    if (!response)
        return MHD_NO;
    answer->body = NULL; //  MHD frees it
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, answer->content_type);
    if (answer->retry_after > 0) {
        char seconds[16];
        snprintf (seconds, sizeof seconds, "%d", answer->retry_after);
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    if (answer->allow[0])
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, answer->allow);
    return s_send (self, req, response, answer->status);
}

//  Answers a path of the web console (ui.h): GET and HEAD only, the file
//  from the binary with its type, ETag (304 when the client has it),
//  Cache-Control and the Content-Security-Policy; "/ui" redirects to "/ui/".
static enum MHD_Result s_console (gw_http_t *self, s_request_t *req) {
    if (strcmp (req->method, "GET") && strcmp (req->method, "HEAD")) {
        gw_response_error (&req->response, 405, "Method not allowed");
        snprintf (req->response.allow, sizeof req->response.allow, "GET, HEAD");
        return s_answer (self, req);
    }
    bool redirect;
    const gw_ui_asset_t *asset = gw_ui_find (req->url, &redirect);
    if (!asset && !redirect) {
        gw_response_error (&req->response, 404, "Not found");
        return s_answer (self, req);
    }
    const char *etag = asset ? asset->etag : NULL;
    const char *given = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_IF_NONE_MATCH);
    int status = redirect ? 308 : gw_ui_fresh (given, etag) ? 304 : 200;
    struct MHD_Response *response = MHD_create_response_from_buffer (
        status == 200 ? asset->size : 0, status == 200 ? (void *) asset->data : (void *) "",
        MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    if (redirect)
        MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, "/ui/");
    else {
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, asset->type);
        MHD_add_response_header (response, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, GW_UI_CACHE);
        MHD_add_response_header (response, "Content-Security-Policy", GW_UI_CSP);
        MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    }
    return s_send (self, req, response, status);
}

//  Holds a request just sent to the broker. Suspending takes the socket
//  out of MHD's epoll set and resuming puts it back: two epoll_ctl, an
//  eventfd write and a read that finds nothing, per request. A request
//  the broker answers within a turn is rather left waiting: MHD calls
//  s_access for it on every run (which returns at once) and
//  gw_http_timeout keeps that from spinning. One still waiting after
//  S_BRIEF_MS, and a long poll from the start, is suspended, so a slow
//  or absent broker costs no CPU however many requests wait.
static void s_hold (gw_http_t *self, s_request_t *req, bool suspend) {
    if (suspend) {
        req->suspended = true;
        MHD_suspend_connection (req->connection);
    } else {
        req->held_at = aq_time_mono_ms ();
        self->brief++;
    }
}

//  Resumes a held request with req->response set: MHD calls s_access
//  again, which queues the response.
static void s_resume (gw_http_t *self, s_request_t *req) {
    req->state = S_ANSWERED;
    if (req->suspended)
        MHD_resume_connection (req->connection);
    else {
        self->brief--;
        self->answered = true;
    }
}

//  --------------------------------------------------------------------------
//  MHD callbacks

static s_conn_t *s_conn_of (struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (s_conn_t *) info->socket_context : NULL;
}

//  The query parameters of a request, the first GW_QUERY_MAX (routes.h).
typedef struct {
    gw_param_t params[GW_QUERY_MAX]; //  in arrival order
    size_t count;                    //  how many
} s_query_t;

static enum MHD_Result s_collect_arg (void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    //  Not checked as UTF-8 here: routes.c refuses or sanitizes what it uses.
    s_query_t *query = (s_query_t *) cls;
    if (query->count == GW_QUERY_MAX)
        return MHD_NO; //  the rest cannot change the answer
    query->params[query->count++] = (gw_param_t){key, value};
    return MHD_YES;
}

//  The declared Content-Length exceeds the limit (or cannot be a number).
static bool s_declared_too_large (gw_http_t *self, struct MHD_Connection *connection) {
    const char *length =
        MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!length)
        return false;
    errno = 0;
    char *end;
    unsigned long long size = strtoull (length, &end, 10);
    if (errno == ERANGE)
        return true;
    return end != length && size > self->max_body;
}

static enum MHD_Result s_receive (gw_http_t *self, s_request_t *req, const char *data,
                                  size_t size) {
    req->received += size;
    if (req->too_large || req->received > self->max_body) {
        req->too_large = true;
        free (req->body);
        req->body = NULL;
        req->body_size = req->body_cap = 0;
        return req->received - self->max_body > S_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (!req->keep_body)
        return MHD_YES;
    if (req->body_size + size > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap * 2 : 4096;
        while (cap < req->body_size + size)
            cap *= 2;
        if (cap > self->max_body)
            cap = self->max_body;
        char *body = realloc (req->body, cap);
        if (!body)
            return MHD_NO;
        req->body = body;
        req->body_cap = cap;
    }
    memcpy (req->body + req->body_size, data, size);
    req->body_size += size;
    return MHD_YES;
}

//  The whole request is in: answer it here or send it to the broker.
static enum MHD_Result s_dispatch (gw_http_t *self, s_request_t *req) {
    if (req->too_large) {
        gw_response_error (&req->response, 413, "Request body too large");
        return s_answer (self, req);
    }
    if (gw_ui_owns (req->url)) //  static, no key
        return s_console (self, req);
    struct MHD_Connection *connection = req->connection;
    s_query_t query = {.count = 0};
    MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND, s_collect_arg, &query);
    gw_request_t in = {
        .method = req->method,
        .path = req->url,
        .authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION),
        .idempotency_key =
            MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Idempotency-Key"),
        .traceparent = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "traceparent"),
        .tracestate = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "tracestate"),
        .query = query.params,
        .query_count = query.count,
        .body = req->body,
        .body_size = req->body_size,
    };
    gw_action_t action;
    gw_routes_translate (&in, &action);
    free (req->body);
    req->body = NULL;
    req->body_size = req->body_cap = 0;
    req->route = action.route;

    if (action.cmd == 0) {
        if (action.response.status == 0 && action.route->id == GW_ROUTE_READYZ)
            gw_response_readyz (&action.response, s_broker_ok (self));
        else if (action.response.status == 0) //  a local route: /healthz
            gw_response_healthz (&action.response, s_broker_ok (self));
        req->response = action.response;
        action.response.body = NULL; //  moved
        gw_action_release (&action);
        return s_answer (self, req);
    }
    uint64_t corr = ++self->next_corr;
    size_t size = 0;
    const uint8_t *frame = gw_action_frame (&action, corr, &size);
    int rc = frame ? zmq_send (self->dealer, frame, size, ZMQ_DONTWAIT) : 0;
    int wait_s = action.wait_s;
    gw_action_release (&action);
    if (!frame) {
        gw_response_error (&req->response, 500, "Internal error");
        return s_answer (self, req);
    }
    if (rc < 0) {
        aq_log (AQ_LOG_WARN, "gateway", "cannot send to the broker: %s", zmq_strerror (errno));
        gw_response_error (&req->response, 503, "Broker unavailable");
        return s_answer (self, req);
    }
    req->corr = corr;
    req->state = S_HELD;
    req->expires = aq_time_mono_ms () + (int64_t) (wait_s + S_GRACE_S) * 1000;
    if (req->conn)
        req->conn->deadline = 0; //  held: the broker's bound applies instead
    s_table_put (self, req);
    s_hold (self, req, wait_s > 0);
    return MHD_YES;
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
    gw_http_t *self = (gw_http_t *) cls;
    s_request_t *req = (s_request_t *) *con_cls;
    if (!req) { //  headers are in
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->connection = connection;
        req->conn = s_conn_of (connection);
        req->method = method;
        req->url = url;
        req->started = aq_time_mono_ms ();
        gw_match_t match;
        req->keep_body = gw_routes_find (method, url, &match) == 0 && match.route->body;
        *con_cls = req;
        if (s_declared_too_large (self, connection)) {
            gw_response_error (&req->response, 413, "Request body too large");
            return s_answer (self, req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        return s_receive (self, req, upload_data, size);
    }
    switch (req->state) {
    case S_RECEIVING:
        return s_dispatch (self, req);
    case S_ANSWERED:
        return s_answer (self, req);
    case S_HELD: //  MHD calls again while a request is briefly held
        if (!req->suspended && aq_time_mono_ms () - req->held_at >= S_BRIEF_MS) {
            self->brief--;
            s_hold (self, req, true);
        }
        return MHD_YES;
    default:
        return MHD_YES;
    }
}

static void s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    gw_http_t *self = (gw_http_t *) cls;
    s_conn_t *conn = s_conn_of (connection);
    if (conn && !conn->cut)
        conn->deadline = aq_time_mono_ms () + self->deadline_ms; //  for the next request
    s_request_t *req = (s_request_t *) *con_cls;
    if (!req)
        return;
    if (req->state == S_HELD && s_table_take (self, req->corr) && !req->suspended)
        self->brief--;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && self->verbose)
        aq_log (AQ_LOG_INFO, "gateway", "%s %s ended before its response was sent (%d)",
                req->method, req->url, (int) toe);
    gw_response_release (&req->response);
    free (req->body);
    free (req);
    *con_cls = NULL;
}

static void s_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    gw_http_t *self = (gw_http_t *) cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        s_conn_t *conn = calloc (1, sizeof *conn);
        if (!conn)
            return; //  no deadline for this one; MHD's idle timeout still applies
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn->fd = info ? info->connect_fd : -1;
        conn->deadline = aq_time_mono_ms () + self->deadline_ms;
        conn->next = self->conns;
        if (self->conns)
            self->conns->prev = conn;
        self->conns = conn;
        self->connections++;
        *socket_context = conn;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_conn_t *conn = (s_conn_t *) *socket_context;
        if (conn->prev)
            conn->prev->next = conn->next;
        else
            self->conns = conn->next;
        if (conn->next)
            conn->next->prev = conn->prev;
        self->connections--;
        free (conn);
        *socket_context = NULL;
    }
}

static void s_mhd_log (void *cls, const char *fmt, va_list args) {
    gw_http_t *self = (gw_http_t *) cls;
    char line[512];
    vsnprintf (line, sizeof line, fmt, args);
    line[strcspn (line, "\n")] = 0;
    aq_log (self->verbose ? AQ_LOG_INFO : AQ_LOG_DEBUG, "gateway", "http: %s", line);
}

//  --------------------------------------------------------------------------
//  Public API

gw_http_t *gw_http_new (const gw_config_t *cfg, void *dealer) {
    assert (cfg && dealer);
    gw_http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->dealer = dealer;
    self->max_body = cfg->max_body;
    self->deadline_ms = (int64_t) cfg->request_deadline_s * 1000;
    self->verbose = cfg->verbose;
    self->buckets = S_BUCKETS;
    self->table = calloc (self->buckets, sizeof *self->table);
    self->next_sweep = aq_time_mono_ms () + S_SWEEP_MS;
    int family = AF_INET;
    int fd = self->table ? gw_listen_socket (cfg->listen, &family) : -1;
    if (fd < 0) {
        free (self->table);
        free (self);
        return NULL;
    }
    self->port = gw_listen_port (fd);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) cfg->per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
        s_completed, self, MHD_OPTION_NOTIFY_CONNECTION, s_connection, self, MHD_OPTION_END);
    if (!self->daemon) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot start the HTTP server on '%s'", cfg->listen);
        close (fd);
        free (self->table);
        free (self);
        return NULL;
    }
    aq_log (AQ_LOG_INFO, "gateway", "listening on '%s' (port %d)", cfg->listen, self->port);
    return self;
}

void gw_http_destroy (gw_http_t **self_p) {
    assert (self_p);
    gw_http_t *self = *self_p;
    if (!self)
        return;
    //  MHD refuses to stop with suspended connections: answer them first
    for (size_t i = 0; i < self->buckets; i++) {
        while (self->table[i]) {
            s_request_t *req = s_table_take (self, self->table[i]->corr);
            gw_response_error (&req->response, 503, "Gateway shutting down");
            s_resume (self, req);
        }
    }
    for (int i = 0; i < 3; i++)
        MHD_run (self->daemon);     //  a chance to send those answers
    MHD_stop_daemon (self->daemon); //  closes the listening socket, frees every record
    assert (self->connections == 0 && self->conns == NULL);
    free (self->table);
    free (self);
    *self_p = NULL;
}

int gw_http_fd (gw_http_t *self) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int gw_http_port (gw_http_t *self) {
    return self->port;
}

size_t gw_http_held (const gw_http_t *self) {
    return self->held;
}

long gw_http_timeout (gw_http_t *self) {
    int64_t due = self->next_sweep - aq_time_mono_ms ();
    long timeout = due < 0 ? 0 : (long) due;
    MHD_UNSIGNED_LONG_LONG mhd;
    if (MHD_get_timeout (self->daemon, &mhd) == MHD_YES && mhd < (MHD_UNSIGNED_LONG_LONG) timeout)
        timeout = (long) mhd;
    //  MHD wants to run at once while it has briefly held requests to call
    //  for; their answers come through the DEALER, which wakes the loop
    if (timeout == 0 && self->brief > 0 && !self->answered)
        timeout = S_BRIEF_TICK;
    return timeout;
}

//  Cuts off connections past their deadline and gives up on late replies.
static void s_sweep (gw_http_t *self, int64_t now) {
    for (s_conn_t *conn = self->conns; conn; conn = conn->next) {
        if (conn->cut || !conn->deadline || now < conn->deadline || conn->fd < 0)
            continue;
        //  MHD sees the end of stream at once and closes it the usual way
        shutdown (conn->fd, SHUT_RDWR);
        conn->cut = true;
        self->cutoffs++;
        aq_log (AQ_LOG_DEBUG, "gateway", "cut off a client past the %lld s request deadline",
                (long long) (self->deadline_ms / 1000));
    }
    for (size_t i = 0; i < self->buckets; i++) {
        s_request_t **link = &self->table[i];
        while (*link) {
            s_request_t *req = *link;
            if (now < req->expires) {
                link = &req->chain;
                continue;
            }
            *link = req->chain;
            req->chain = NULL;
            self->held--;
            aq_log (AQ_LOG_WARN, "gateway", "no reply from the broker for %s %s", req->method,
                    req->url);
            gw_response_error (&req->response, 503, "Broker unavailable");
            s_resume (self, req);
        }
    }
}

void gw_http_run (gw_http_t *self) {
    MHD_run (self->daemon);
    if (self->answered) { //  that run queued the brief ones' answers, this one sends them
        self->answered = false;
        MHD_run (self->daemon);
    }
    int64_t now = aq_time_mono_ms ();
    if (now >= self->next_sweep) {
        s_sweep (self, now);
        self->next_sweep = now + S_SWEEP_MS;
    }
    //  Any answer (HEARTBEAT, ERROR) shows the broker is alive. While pings
    //  go unanswered they queue in the DEALER: send fewer.
    bool unanswered = self->last_ping > self->broker_seen;
    if (now - self->broker_seen >= S_PING_MS &&
        now - self->last_ping >= (unanswered ? S_PING_SLOW_MS : S_PING_MS)) {
        static const uint8_t ping[] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       AQ_CMD_HEARTBEAT, 0x80}; //  and an empty map
        zmq_send (self->dealer, ping, sizeof ping, ZMQ_DONTWAIT);
        self->last_ping = now;
    }
}

int gw_http_deliver (gw_http_t *self, const uint8_t *frame, size_t size) {
    int cmd;
    aq_node_t body, value;
    int rc = aq_msg_frame (frame, size, &cmd, &body);
    if (rc != 0)
        return rc;
    self->broker_seen = aq_time_mono_ms ();
    if (cmd == AQ_CMD_ERROR) {
        int64_t code =
            aq_node_get (&body, "code", &value) && value.type == AQ_NODE_INT ? value.i : 0;
        bool reason = aq_node_get (&body, "reason", &value) && value.type == AQ_NODE_STR;
        aq_log (AQ_LOG_WARN, "gateway", "broker error %lld: %.*s", (long long) code,
                reason ? (int) strnlen ((const char *) value.data, value.count) : 0,
                reason ? (const char *) value.data : "");
    }
    if (cmd != AQ_CMD_REPLY && cmd != AQ_CMD_ERROR)
        return 0;
    int64_t corr = aq_node_get (&body, "corr", &value) && value.type == AQ_NODE_INT ? value.i : 0;
    s_request_t *req = corr > 0 ? s_table_take (self, (uint64_t) corr) : NULL;
    if (req && cmd == AQ_CMD_ERROR) {
        //  a broker that does not know the command (an older one): say so now
        gw_response_error (&req->response, 502, "Bad reply from broker");
        s_resume (self, req);
        return 0;
    }
    if (!req) {
        aq_log (AQ_LOG_DEBUG, "gateway", "reply %lld came too late", (long long) corr);
        return 0;
    }
    gw_gauge_t gateway[] = {{"connections", (int64_t) self->connections},
                            {"held", (int64_t) self->held},
                            {"cutoffs", (int64_t) self->cutoffs}};
    bool metrics = req->route && req->route->id == GW_ROUTE_METRICS;
    if (gw_response_reply (&req->response, &body, metrics, gateway, 3) != 0)
        gw_response_error (&req->response, 500, "Internal error");
    s_resume (self, req);
    return 0;
}
