/*  http_test.c - gw_http's selftest: the HTTP side against a fake broker
    (tests/rig_broker) and raw HTTP requests (tests/rig_http)
*/
#include "http.h"
#include "options.h"
#include "ui.h"
#include "aq_proto.h"
#include "aq_time.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

//  --------------------------------------------------------------------------
//  Selftest: the server in this thread, a fake broker (tests/rig_broker) on
//  inproc, clients on non-blocking sockets (tests/rig_http), all pumped by
//  one loop.

#include "../tests/rig_broker.h"
#include "../tests/rig_http.h"
#include "aq_json.h"

typedef struct {
    void *ctx;            //  ZeroMQ context
    rig_broker_t *broker; //  the fake broker
    void *dealer;         //  the gateway's socket
    gw_http_t *http;      //  the server
    int requests;         //  protocol requests the fake broker saw
    char *last;           //  the last one as JSON text
    int last_cmd;         //  and its command
} s_harness_t;

//  The fake broker: answers what the selftest expects.
static void s_fake_broker (s_harness_t *h) {
    aq_node_t msg, value, task;
    int cmd;
    while ((cmd = rig_broker_recv_msg (h->broker, &msg, 0)) != -1) {
        h->requests++;
        h->last_cmd = cmd;
        free (h->last);
        h->last = aq_json_dumps (&msg);
        long long corr = aq_node_get (&msg, "corr", &value) ? (long long) value.i : 0;
        char id[64] = "", target[256] = "";
        if (aq_node_get (&msg, "id", &value))
            aq_node_strcpy (&value, id, sizeof id);
        if (aq_node_get (&msg, "task", &task) && aq_node_get (&task, "targetUrl", &value))
            aq_node_strcpy (&value, target, sizeof target);
        if (cmd == AQ_CMD_TASK_GET && strcmp (id, "held") == 0)
            continue; //  never answered
        char reply[512] = "\"status\": 429, \"retryAfter\": 7, \"error\": \"Rate limit exceeded. "
                          "Upgrade your plan for higher limits.\"";
        if (cmd == AQ_CMD_TASK_GET)
            snprintf (
                reply, sizeof reply,
                "\"status\": 200, \"body\": {\"task\": {\"id\": \"%s\", \"status\": \"pending\"}}",
                id);
        else if (cmd == AQ_CMD_TASK_CREATE)
            snprintf (
                reply, sizeof reply,
                "\"status\": 201, \"body\": {\"task\": {\"id\": \"t1\", \"targetUrl\": \"%s\"}}",
                target);
        else if (cmd == AQ_CMD_STATS)
            snprintf (reply, sizeof reply,
                      "\"status\": 200, \"body\": {\"tasks\": {\"pending\": 2}, \"workers\": 1}");
        rig_broker_send_json (h->broker, AQ_CMD_REPLY, "{\"corr\": %lld, %s}", corr, reply);
    }
}

//  One turn of the gateway loop (as gateway.c runs it, waiting 10 ms at
//  most) plus the fake broker.
static void s_pump (void *arg) {
    s_harness_t *h = arg;
    zmq_pollitem_t items[] = {{h->dealer, 0, ZMQ_POLLIN, 0},
                              {NULL, gw_http_fd (h->http), ZMQ_POLLIN, 0},
                              {rig_broker_socket (h->broker), 0, ZMQ_POLLIN, 0}};
    long timeout = gw_http_timeout (h->http);
    zmq_poll (items, 3, timeout < 10 ? timeout : 10);
    s_fake_broker (h);
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, h->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        assert (gw_http_deliver (h->http, zmq_msg_data (&frame), zmq_msg_size (&frame)) == 0);
        zmq_msg_close (&frame);
    }
    gw_http_run (h->http);
}

#define S_AUTH "Host: x\r\nAuthorization: Bearer k1\r\n" //  headers of a request with a key

//  Sends request on a new connection; asserts that the response holds each
//  text that follows, up to a NULL.
static void s_check (s_harness_t *h, const char *request, ...) {
    char *text = rig_http_exchange (gw_http_port (h->http), request, s_pump, h);
    va_list args;
    va_start (args, request);
    for (const char *want = va_arg (args, const char *); want; want = va_arg (args, const char *))
        rig_http_expect (text, want);
    va_end (args);
    free (text);
}

void gw_http_test (bool verbose) {
    if (verbose)
        printf (" * gw_http: ");

    s_harness_t h = {.ctx = zmq_ctx_new ()};
    h.broker = rig_broker_new (h.ctx, "inproc://gw-http-test");
    rig_broker_echo (h.broker, true);
    h.dealer = zmq_socket (h.ctx, ZMQ_DEALER);
    assert (zmq_connect (h.dealer, "inproc://gw-http-test") == 0);
    gw_config_t cfg;
    gw_config_defaults (&cfg);
    cfg.max_body = 1000;
    cfg.request_deadline_s = 1;
    cfg.verbose = verbose;

    //  Bad listen addresses fail with NULL (and one log line)
    cfg.listen = "nowhere";
    assert (gw_http_new (&cfg, h.dealer) == NULL);
    cfg.listen = "127.0.0.1:0";
    h.http = gw_http_new (&cfg, h.dealer);
    assert (h.http && gw_http_port (h.http) > 0 && gw_http_fd (h.http) >= 0);

    //  Local answers
    s_check (&h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n",
             "Content-Type: application/json\r\n", "\r\n\r\n{\"status\":\"ok\",\"broker\":", NULL);
    s_check (&h, "GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found\r\n",
             "{\"error\":\"Not found\"}", NULL);
    s_check (&h, "DELETE /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n",
             "HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET, POST\r\n", NULL);
    s_check (&h, "GET /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 401 Unauthorized\r\n",
             "{\"error\":\"API key required\"}", NULL);
    //  what libmicrohttpd refuses by itself, in our envelope
    s_check (&h, "GET /v1/tasks HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ",
             "Content-Type: application/json\r\n", "{\"error\":\"HTTP version not supported\"}",
             NULL);
    s_check (&h, "GET /v1/tasks HTTX/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n",
             "{\"error\":\"Malformed HTTP request\"}", NULL);

    //  The console's files: no key, no broker, their headers; 304 on a
    //  matching If-None-Match; /ui redirects; only GET and HEAD
    bool redirect;
    const gw_ui_asset_t *index = gw_ui_find ("/ui/", &redirect);
    char etag[96], request[256];
    snprintf (etag, sizeof etag, "ETag: %s\r\n", index->etag);
    s_check (&h, "GET /ui/ HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n",
             "Content-Type: text/html; charset=utf-8\r\n", etag, "Cache-Control: no-cache\r\n",
             "Content-Security-Policy: default-src 'self'; script-src 'self';",
             "X-Content-Type-Options: nosniff\r\n", "\r\n\r\n<!doctype html>", NULL);
    snprintf (request, sizeof request, "GET /ui/ HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n",
              index->etag);
    s_check (&h, request, "HTTP/1.1 304 Not Modified\r\n", etag, NULL);
    s_check (&h, "HEAD /ui/app.js HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n",
             "Content-Type: text/javascript; charset=utf-8\r\n", NULL);
    s_check (&h, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n",
             "Content-Type: image/svg+xml\r\n", "<svg", NULL);
    s_check (&h, "GET /ui HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 308 ", "Location: /ui/\r\n",
             NULL);
    s_check (&h, "GET /ui/nothing.js HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found\r\n",
             "{\"error\":\"Not found\"}", NULL);
    s_check (&h, "POST /ui/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
             "HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET, HEAD\r\n", NULL);
    assert (h.requests == 0);

    //  Through the broker: request translated, reply mapped
    s_check (&h, "GET /v1/tasks/abc?wait=0 HTTP/1.1\r\n" S_AUTH "\r\n", "HTTP/1.1 200 OK\r\n",
             "{\"task\":{\"id\":\"abc\",\"status\":\"pending\"}}", NULL);
    assert (h.requests == 1 && h.last_cmd == AQ_CMD_TASK_GET);
    rig_http_expect (h.last, "{\"key\":\"k1\",\"id\":\"abc\",\"wait\":0,\"corr\":");
    const char *create = "POST /v1/tasks HTTP/1.1\r\n" S_AUTH
                         "Idempotency-Key: order-1\r\nContent-Length: 26\r\n\r\n"
                         "{\"targetUrl\": \"https://x\"}";
    s_check (&h, create, "HTTP/1.1 201 Created\r\n",
             "{\"task\":{\"id\":\"t1\",\"targetUrl\":\"https://x\"}}", NULL);
    assert (h.last_cmd == AQ_CMD_TASK_CREATE);
    rig_http_expect (h.last,
                     "\"task\":{\"targetUrl\":\"https://x\"},\"idem\":\"order-1\",\"corr\":");
    s_check (&h, "POST /v1/tasks/abc/cancel HTTP/1.1\r\n" S_AUTH "\r\n",
             "HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 7\r\n",
             "{\"error\":\"Rate limit exceeded. Upgrade your plan for higher limits.\"}", NULL);
    //  PUT bodies are read as POST bodies are, whole or chunked
    s_check (&h,
             "PUT /tasks/s1 HTTP/1.1\r\n" S_AUTH "Content-Length: 17\r\n\r\n{\"priority\":  2 }",
             "HTTP/1.1 429 Too Many Requests\r\n", NULL);
    assert (h.last_cmd == AQ_CMD_SCHEDULE_UPDATE);
    rig_http_expect (h.last, "\"id\":\"s1\",\"schedule\":{\"priority\":2}");
    s_check (&h,
             "PUT /tasks/s2 HTTP/1.1\r\n" S_AUTH "Transfer-Encoding: chunked\r\n\r\n"
             "7\r\n{\"title\r\n9\r\n\": \"Daily\r\n2\r\n\"}\r\n0\r\n\r\n",
             "HTTP/1.1 429 Too Many Requests\r\n", NULL);
    assert (h.last_cmd == AQ_CMD_SCHEDULE_UPDATE);
    rig_http_expect (h.last, "\"id\":\"s2\",\"schedule\":{\"title\":\"Daily\"}");
    s_check (&h, "PUT /tasks/s1 HTTP/1.1\r\n" S_AUTH "Content-Length: 0\r\n\r\n",
             "{\"error\":\"Request body must be a JSON object\"}", NULL);
    s_check (&h, "DELETE /tasks/s1 HTTP/1.1\r\nHost: x\r\n\r\n",
             "HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET, PUT\r\n", NULL);
    s_check (&h,
             "POST /tasks/preview HTTP/1.1\r\n" S_AUTH
             "Content-Length: 26\r\n\r\n{\"schedule_kind\": \"event\"}",
             "HTTP/1.1 429 Too Many Requests\r\n", NULL);
    assert (h.last_cmd == AQ_CMD_SCHEDULE_PREVIEW && !strstr (h.last, "\"id\""));
    rig_http_expect (h.last, "\"schedule\":{\"schedule_kind\":\"event\"}");
    s_check (&h, "GET /metrics HTTP/1.1\r\n" S_AUTH "\r\n",
             "Content-Type: text/plain; version=0.0.4\r\n",
             "asyncqueue_tasks{status=\"pending\"} 2\n", "asyncqueue_workers_connected 1\n",
             "asyncqueue_gateway_connections ", NULL);

    //  Keep-alive: two requests on one connection
    char *text;
    int fd = rig_http_client (gw_http_port (h.http));
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    bool closed;
    for (int i = 0; i < 2; i++) {
        assert (send (fd, two, strlen (two), 0) > 0);
        text = rig_http_read (fd, 3000, &closed, s_pump, &h);
        rig_http_expect (text, "{\"status\":\"ok\",\"broker\":\"ok\"}");
        assert (!closed);
        free (text);
    }
    close (fd);

    //  Bodies: declared too large is refused before it is sent; a chunked
    //  one is refused once it passes the limit; bad JSON is located
    s_check (&h, "POST /v1/tasks HTTP/1.1\r\n" S_AUTH "Content-Length: 2097152\r\n\r\n",
             "HTTP/1.1 413 ", "{\"error\":\"Request body too large\"}", NULL);
    fd = rig_http_client (gw_http_port (h.http));
    const char *head = "POST /v1/tasks HTTP/1.1\r\n" S_AUTH "Transfer-Encoding: chunked\r\n\r\n";
    assert (send (fd, head, strlen (head), 0) > 0);
    char chunk[600];
    snprintf (chunk, sizeof chunk, "200\r\n%0512d\r\n", 0);
    for (int i = 0; i < 3; i++)
        assert (send (fd, chunk, strlen (chunk), 0) > 0);
    assert (send (fd, "0\r\n\r\n", 5, 0) == 5);
    text = rig_http_read (fd, 3000, &closed, s_pump, &h);
    rig_http_expect (text, "HTTP/1.1 413 ");
    free (text);
    close (fd);
    s_check (&h, "POST /v1/tasks HTTP/1.1\r\n" S_AUTH "Content-Length: 9\r\n\r\n{\"a\": 1,}",
             "HTTP/1.1 400 Bad Request\r\n", "{\"error\":\"Invalid JSON at line 1, column 9\"}",
             NULL);
    s_check (&h, "POST /v1/tasks HTTP/1.1\r\n" S_AUTH "Content-Length: 0\r\n\r\n",
             "{\"error\":\"Request body must be a JSON object\"}", NULL);
    s_check (&h, "GET /v1/tasks?limit=5&x=1 HTTP/1.1\r\n" S_AUTH "\r\n",
             "{\"error\":\"Unknown query parameter: x\"}", NULL);

    //  A slow client is cut off by the deadline while others are served
    int64_t start = aq_time_mono_ms ();
    int slow = rig_http_client (gw_http_port (h.http));
    assert (send (slow, "GET /healthz HTTP/1.1\r\n", 23, 0) == 23);
    closed = false;
    while (!closed && aq_time_mono_ms () - start < 4000) {
        text = rig_http_read (slow, 200, &closed, s_pump, &h);
        assert (text[0] == 0); //  never answered
        free (text);
        if (!closed && send (slow, "X", 1, MSG_NOSIGNAL) != 1)
            closed = true;
    }
    int64_t took = aq_time_mono_ms () - start;
    assert (closed && took >= 900 && took < 2500);
    close (slow);
    s_check (&h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n", NULL);

    //  A request the broker never answers is held (not cut off); shutting
    //  down answers it with 503
    fd = rig_http_client (gw_http_port (h.http));
    const char *held = "GET /v1/tasks/held?wait=3 HTTP/1.1\r\n" S_AUTH "\r\n";
    assert (send (fd, held, strlen (held), 0) > 0);
    text = rig_http_read (fd, 1500, &closed, s_pump, &h);
    assert (text[0] == 0 && !closed && gw_http_held (h.http) == 1);
    free (text);
    gw_http_destroy (&h.http);
    assert (h.http == NULL);
    gw_http_destroy (&h.http);
    char buf[1024];
    ssize_t n = recv (fd, buf, sizeof buf - 1, 0);
    assert (n > 0);
    buf[n] = 0;
    rig_http_expect (buf, "HTTP/1.1 503 Service Unavailable\r\n");
    rig_http_expect (buf, "{\"error\":\"Gateway shutting down\"}");
    close (fd);

    free (h.last);
    rig_broker_destroy (&h.broker);
    zmq_close (h.dealer);
    zmq_ctx_term (h.ctx);
    if (verbose)
        printf ("OK\n");
}
