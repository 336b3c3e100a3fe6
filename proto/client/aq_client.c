/*  aq_client.c - the C client library: a DEALER dialog with the broker

    Requests go out with aq_codec_send and replies come back through
    aq_codec_decode; nothing here knows msgpack. Each request gets the next
    correlation id; a synchronous call reads replies until its own arrives
    and drops the others (late answers to requests that timed out).
*/
#include "aq_client.h"
#include "aq_curve.h"
#include "aq_time.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_HWM         10000 //  send and receive queue limits, messages
#define S_WAIT_MARGIN 5000  //  a long poll's reply may take this much longer, ms

struct _aq_client_t {
    void *ctx;     //  ZeroMQ context
    bool owns_ctx; //  we created ctx and terminate it
    void *dealer;  //  connection to the broker's client ROUTER
    char *key;     //  API key or NULL
    char *admin;   //  admin token or NULL
    int timeout;   //  request timeout, ms
    int64_t corr;  //  last correlation id sent
};

static aq_client_t *s_client_new (void *ctx, bool owns_ctx, const char *endpoint,
                                  aq_curve_t *curve) {
    assert (endpoint);
    aq_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (owns_ctx)
            zmq_ctx_term (ctx);
        return NULL;
    }
    self->ctx = ctx;
    self->owns_ctx = owns_ctx;
    self->timeout = AQ_CLIENT_TIMEOUT;
    self->dealer = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0, one = 1, hwm = S_HWM;
    int64_t maxmsg = AQ_PROTO_MAX_MSG;
    if (!self->dealer || zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt (self->dealer, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt (self->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt (self->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt (self->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        (curve && aq_curve_apply (curve, self->dealer)) || zmq_connect (self->dealer, endpoint)) {
        int err = errno;
        aq_client_destroy (&self);
        errno = err;
        return NULL;
    }
    return self;
}

aq_client_t *aq_client_new (const char *endpoint) {
    void *ctx = zmq_ctx_new ();
    return ctx ? s_client_new (ctx, true, endpoint, NULL) : NULL;
}

aq_client_t *aq_client_new_ctx (void *zmq_ctx, const char *endpoint) {
    assert (zmq_ctx);
    return s_client_new (zmq_ctx, false, endpoint, NULL);
}

aq_client_t *aq_client_new_secure (const char *endpoint, const char *secret_cert,
                                   const char *broker_cert, char *err, size_t err_size) {
    aq_curve_t *curve = aq_curve_new_client (secret_cert, broker_cert, err, err_size);
    if (!curve)
        return NULL;
    void *ctx = zmq_ctx_new ();
    aq_client_t *self = ctx ? s_client_new (ctx, true, endpoint, curve) : NULL;
    if (!self)
        snprintf (err, err_size, "cannot connect to '%s': %s", endpoint, strerror (errno));
    aq_curve_destroy (&curve); //  the socket keeps its keys
    return self;
}

void aq_client_destroy (aq_client_t **self_p) {
    if (!self_p || !*self_p)
        return;
    aq_client_t *self = *self_p;
    if (self->dealer)
        zmq_close (self->dealer);
    if (self->owns_ctx)
        zmq_ctx_term (self->ctx);
    free (self->key);
    free (self->admin);
    free (self);
    *self_p = NULL;
}

static void s_set_secret (char **slot, const char *value) {
    if (*slot) //  don't leave the old secret lying in freed memory
        memset (*slot, 0, strlen (*slot));
    free (*slot);
    *slot = value ? strdup (value) : NULL;
}

void aq_client_set_key (aq_client_t *self, const char *api_key) {
    assert (self);
    s_set_secret (&self->key, api_key);
}

void aq_client_set_admin (aq_client_t *self, const char *token) {
    assert (self);
    s_set_secret (&self->admin, token);
}

void aq_client_set_timeout (aq_client_t *self, int timeout_ms) {
    assert (self);
    self->timeout = timeout_ms < 0 ? 0 : timeout_ms;
}

//  --------------------------------------------------------------------------
//  Sending

//  Team and key management is authorised by the admin token, task commands
//  by the API key, STATS by either. A client holding only one credential
//  sends it with everything (commands added later keep working).
static bool s_is_admin (int cmd) {
    return cmd == AQ_CMD_TEAM_CREATE || cmd == AQ_CMD_TEAM_LIST || cmd == AQ_CMD_KEY_CREATE ||
           cmd == AQ_CMD_KEY_LIST || cmd == AQ_CMD_KEY_REVOKE;
}

//  Builds the request: a shallow copy of fields plus corr and credentials.
//  Returns a new object, or NULL if fields is not an object.
static json_t *s_request (aq_client_t *self, int cmd, const json_t *fields, int64_t corr) {
    if (fields && !json_is_object (fields))
        return NULL;
    json_t *request = json_object ();
    if (!request || (fields && json_object_update (request, (json_t *) fields) != 0)) {
        json_decref (request);
        return NULL;
    }
    json_object_set_new (request, "corr", json_integer (corr));
    bool admin = self->admin && (s_is_admin (cmd) || cmd == AQ_CMD_STATS || !self->key);
    bool key = self->key && (!s_is_admin (cmd) || !self->admin);
    if (admin && !json_object_get (request, "admin"))
        json_object_set_new (request, "admin", json_string (self->admin));
    if (key && !json_object_get (request, "key"))
        json_object_set_new (request, "key", json_string (self->key));
    return request;
}

//  Waits until the socket can take a message, up to timeout_ms (-1 forever).
//  With ZMQ_IMMEDIATE that means a connection to the broker exists.
//  Returns 0, or -1 with errno EAGAIN on timeout (or from zmq_poll).
static int s_wait (void *socket, short events, int timeout_ms) {
    zmq_pollitem_t item = {socket, 0, events, 0};
    int rc = zmq_poll (&item, 1, timeout_ms);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

static int64_t s_send (aq_client_t *self, int cmd, const json_t *fields, int timeout_ms) {
    assert (self);
    int64_t corr = self->corr + 1;
    json_t *request = s_request (self, cmd, fields, corr);
    if (!request) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = aq_time_mono_ms () + timeout_ms;
    int rc;
    for (;;) {
        rc = aq_codec_send (self->dealer, NULL, 0, cmd, request, ZMQ_DONTWAIT);
        if (rc == 0 || errno != EAGAIN)
            break;
        int64_t left = deadline - aq_time_mono_ms ();
        if (left <= 0 || (rc = s_wait (self->dealer, ZMQ_POLLOUT, (int) left)) != 0) {
            if (errno == EAGAIN)
                errno = ENOTCONN; //  no connection to the broker in time
            break;
        }
    }
    int err = errno;
    json_decref (request);
    if (rc != 0) {
        errno = err;
        return -1;
    }
    self->corr = corr;
    return corr;
}

int64_t aq_client_send (aq_client_t *self, int cmd, const json_t *fields) {
    return s_send (self, cmd, fields, self->timeout);
}

//  --------------------------------------------------------------------------
//  Receiving

//  Reads one message if one is waiting. Returns 1 and sets *corr/*reply for
//  a REPLY or ERROR, 0 if the message was something else (skipped), -1 with
//  errno (EAGAIN: nothing waiting).
static int s_read_one (aq_client_t *self, int64_t *corr, json_t **reply) {
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, self->dealer, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close (&msg);
        errno = err;
        return -1;
    }
    bool more = zmq_msg_more (&msg);
    int cmd = 0;
    json_t *body = NULL;
    int rc = 0;
    if (!more && aq_codec_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &cmd, &body) == 0) {
        if (cmd == AQ_CMD_REPLY && json_is_integer (json_object_get (body, "status"))) {
            *corr = aq_field_int (body, "corr", 0);
            *reply = body;
            body = NULL;
            rc = 1;
        } else if (cmd == AQ_CMD_ERROR) {
            //  The broker could not read a request of ours: make it a reply.
            *corr = aq_field_int (body, "corr", 0);
            const char *reason = aq_field_str (body, "reason");
            *reply = json_pack ("{s:I, s:I, s:s}", "corr", (json_int_t) *corr, "status",
                                (json_int_t) aq_field_int (body, "code", AQ_BAD_REQUEST), "error",
                                reason ? reason : "protocol error");
            rc = *reply ? 1 : 0;
        }
    }
    json_decref (body);
    zmq_msg_close (&msg);
    while (more) { //  we only ever expect one frame: skip the rest
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->dealer, 0) < 0)
            more = false;
        else
            more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    return rc;
}

static int s_status (const json_t *reply) {
    return (int) aq_field_int (reply, "status", -1);
}

//  Waits for a reply until deadline (mono ms, or -1 forever). want > 0
//  keeps only the reply with that corr (and a corr-less ERROR). Returns the
//  status, or -1 with errno.
static int s_recv (aq_client_t *self, int64_t want, int64_t deadline, int64_t *corr,
                   json_t **reply) {
    *reply = NULL;
    for (;;) {
        int64_t got = 0;
        json_t *message = NULL;
        int rc = s_read_one (self, &got, &message);
        if (rc == 1) {
            if (want <= 0 || got == want || got == 0) {
                *corr = got;
                *reply = message;
                return s_status (message);
            }
            json_decref (message); //  a late answer to an abandoned request
            continue;
        }
        if (rc == 0)
            continue;
        if (errno != EAGAIN)
            return -1;
        int left = -1;
        if (deadline >= 0) {
            int64_t now = aq_time_mono_ms ();
            left = deadline > now ? (int) (deadline - now) : 0;
        }
        if (s_wait (self->dealer, ZMQ_POLLIN, left) != 0)
            return -1;
    }
}

int aq_client_recv (aq_client_t *self, int64_t *corr, json_t **reply, int timeout_ms) {
    assert (self && corr && reply);
    int64_t deadline = timeout_ms < 0 ? -1 : aq_time_mono_ms () + timeout_ms;
    return s_recv (self, 0, deadline, corr, reply);
}

int aq_client_call (aq_client_t *self, int cmd, const json_t *fields, json_t **reply) {
    assert (self && reply);
    *reply = NULL;
    int64_t timeout = self->timeout;
    if (cmd == AQ_CMD_TASK_GET) { //  a long poll must not time out before the broker answers
        int64_t wait = aq_field_int (fields, "wait", 0);
        if (wait > 0 && wait <= 3600 && wait * 1000 + S_WAIT_MARGIN > timeout)
            timeout = wait * 1000 + S_WAIT_MARGIN;
    }
    int64_t deadline = aq_time_mono_ms () + timeout;
    int64_t corr = s_send (self, cmd, fields, self->timeout);
    if (corr < 0)
        return -1;
    int64_t got;
    int rc = s_recv (self, corr, deadline, &got, reply);
    if (rc < 0 && errno == EAGAIN)
        errno = ETIMEDOUT; //  sent, but no reply in time
    return rc;
}

//  --------------------------------------------------------------------------
//  Task commands

static int s_call_id (aq_client_t *self, int cmd, const char *id, json_t **reply) {
    assert (id);
    json_t *fields = json_pack ("{s:s}", "id", id);
    int rc = fields ? aq_client_call (self, cmd, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_task_create (aq_client_t *self, const json_t *task, const char *idem,
                           json_t **reply) {
    assert (task);
    json_t *fields = json_pack ("{s:O}", "task", (json_t *) task);
    if (fields && idem)
        json_object_set_new (fields, "idem", json_string (idem));
    int rc = fields ? aq_client_call (self, AQ_CMD_TASK_CREATE, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_task_get (aq_client_t *self, const char *id, int wait_s, json_t **reply) {
    assert (id);
    json_t *fields = json_pack ("{s:s}", "id", id);
    if (fields && wait_s > 0)
        json_object_set_new (fields, "wait", json_integer (wait_s));
    int rc = fields ? aq_client_call (self, AQ_CMD_TASK_GET, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_task_list (aq_client_t *self, const json_t *query, json_t **reply) {
    return aq_client_call (self, AQ_CMD_TASK_LIST, query, reply);
}

int aq_client_task_cancel (aq_client_t *self, const char *id, json_t **reply) {
    return s_call_id (self, AQ_CMD_TASK_CANCEL, id, reply);
}

int aq_client_task_retry (aq_client_t *self, const char *id, json_t **reply) {
    return s_call_id (self, AQ_CMD_TASK_RETRY, id, reply);
}

int aq_client_task_attempts (aq_client_t *self, const char *id, json_t **reply) {
    return s_call_id (self, AQ_CMD_TASK_ATTEMPTS, id, reply);
}

int aq_client_task_batch (aq_client_t *self, const json_t *tasks, const char *idem,
                          json_t **reply) {
    assert (tasks);
    json_t *fields = json_pack ("{s:{s:O}}", "batch", "tasks", (json_t *) tasks);
    if (fields && idem)
        json_object_set_new (fields, "idem", json_string (idem));
    int rc = fields ? aq_client_call (self, AQ_CMD_TASK_BATCH, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_task_bulk (aq_client_t *self, const json_t *bulk, json_t **reply) {
    assert (bulk);
    json_t *fields = json_pack ("{s:O}", "bulk", (json_t *) bulk);
    int rc = fields ? aq_client_call (self, AQ_CMD_TASK_BULK, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_bulk_get (aq_client_t *self, const char *id, json_t **reply) {
    return s_call_id (self, AQ_CMD_BULK_GET, id, reply);
}

int aq_client_stats (aq_client_t *self, json_t **reply) {
    return aq_client_call (self, AQ_CMD_STATS, NULL, reply);
}

int aq_client_flow_list (aq_client_t *self, const json_t *query, json_t **reply) {
    return aq_client_call (self, AQ_CMD_FLOW_LIST, query, reply);
}

int aq_client_flow_get (aq_client_t *self, const char *key, json_t **reply) {
    return s_call_id (self, AQ_CMD_FLOW_GET, key, reply);
}

int aq_client_flow_set (aq_client_t *self, const char *key, const json_t *limits, json_t **reply) {
    assert (key && limits);
    json_t *fields = json_pack ("{s:s, s:O}", "id", key, "limits", (json_t *) limits);
    int rc = fields ? aq_client_call (self, AQ_CMD_FLOW_SET, fields, reply) : -1;
    json_decref (fields);
    return rc;
}

int aq_client_flow_pause (aq_client_t *self, const char *key, bool paused, json_t **reply) {
    return s_call_id (self, paused ? AQ_CMD_FLOW_PAUSE : AQ_CMD_FLOW_RESUME, key, reply);
}

int aq_client_whoami (aq_client_t *self, json_t **reply) {
    return aq_client_call (self, AQ_CMD_AUTH, NULL, reply);
}

json_t *aq_client_reply_body (const json_t *reply) {
    return json_object_get (reply, "body");
}

const char *aq_client_reply_error (const json_t *reply) {
    return aq_field_str (reply, "error");
}

json_t *aq_client_reply_task (const json_t *reply) {
    return json_object_get (aq_client_reply_body (reply), "task");
}

const char *aq_client_reply_task_id (const json_t *reply) {
    return aq_field_str (aq_client_reply_task (reply), "id");
}

//  --------------------------------------------------------------------------
//  Selftest: a fake broker ROUTER in a thread answers according to a `mode`
//  field in each request:
//    (none)  REPLY 200 with body {request: <the request as received>}
//    slow    REPLY after 600 ms (the client has given up by then)
//    stale   first a REPLY with another corr, then a heartbeat and garbage,
//            then the real REPLY
//    error   ERROR {code: 400, reason}, no corr
//    hold    nothing yet; `flush` answers every held request, newest first
//    quit    REPLY, then the thread ends

#define S_TEST_ENDPOINT "inproc://aq-client-test"

static bool s_streq (const char *a, const char *b) {
    return a && b && strcmp (a, b) == 0;
}

static void s_fake_reply (void *router, zmq_msg_t *rid, int64_t corr, int status, json_t *request) {
    json_t *reply = json_pack ("{s:I, s:i}", "corr", (json_int_t) corr, "status", status);
    if (request)
        json_object_set_new (reply, "body", json_pack ("{s:O}", "request", request));
    else
        json_object_set_new (reply, "error", json_string ("Task not found"));
    assert (aq_codec_send (router, zmq_msg_data (rid), zmq_msg_size (rid), AQ_CMD_REPLY, reply,
                           0) == 0);
    json_decref (reply);
}

static void *s_fake_broker (void *router) {
    zmq_msg_t held_rid[64];
    int64_t held_corr[64];
    int held = 0;
    for (bool quit = false; !quit;) {
        zmq_msg_t rid, frame;
        zmq_msg_init (&rid);
        zmq_msg_init (&frame);
        assert (zmq_msg_recv (&rid, router, 0) >= 0);
        assert (zmq_msg_more (&rid));
        assert (zmq_msg_recv (&frame, router, 0) >= 0);
        int cmd;
        json_t *request;
        assert (aq_codec_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &cmd, &request) ==
                0);
        json_object_set_new (request, "cmd", json_integer (cmd));
        int64_t corr = aq_field_int (request, "corr", -1);
        const char *mode = aq_field_str (request, "mode");
        mode = mode ? mode : "";
        if (s_streq (mode, "slow")) {
            usleep (600 * 1000);
            s_fake_reply (router, &rid, corr, 200, request);
        } else if (s_streq (mode, "stale")) {
            s_fake_reply (router, &rid, corr + 1000, 200, request);
            assert (aq_codec_send (router, zmq_msg_data (&rid), zmq_msg_size (&rid),
                                   AQ_CMD_HEARTBEAT, NULL, 0) == 0);
            assert (zmq_send (router, zmq_msg_data (&rid), zmq_msg_size (&rid), ZMQ_SNDMORE) >= 0);
            assert (zmq_send (router, "garbage", 7, 0) == 7);
            s_fake_reply (router, &rid, corr, 404, NULL);
        } else if (s_streq (mode, "error")) {
            json_t *error = json_pack ("{s:i, s:s}", "code", 400, "reason", "malformed message");
            assert (aq_codec_send (router, zmq_msg_data (&rid), zmq_msg_size (&rid), AQ_CMD_ERROR,
                                   error, 0) == 0);
            json_decref (error);
        } else if (s_streq (mode, "hold") && held < 64) {
            zmq_msg_init (&held_rid[held]);
            zmq_msg_copy (&held_rid[held], &rid);
            held_corr[held++] = corr;
        } else if (s_streq (mode, "flush")) {
            while (held > 0) {
                held--;
                s_fake_reply (router, &held_rid[held], held_corr[held], 202, request);
                zmq_msg_close (&held_rid[held]);
            }
            s_fake_reply (router, &rid, corr, 200, request);
        } else {
            s_fake_reply (router, &rid, corr, 200, request);
            quit = s_streq (mode, "quit");
        }
        json_decref (request);
        zmq_msg_close (&rid);
        zmq_msg_close (&frame);
    }
    return NULL;
}

void aq_client_test (bool verbose) {
    void *ctx = zmq_ctx_new ();
    assert (ctx);

    //  A malformed endpoint fails at once.
    assert (aq_client_new ("nonsense") == NULL);
    assert (aq_client_new_ctx (ctx, "tcp://") == NULL);
    aq_client_destroy (NULL);

    //  Nobody there: send and call time out, not hang. (Over inproc a
    //  request would wait in the pipe for a late bind, so use ipc.)
    char nobody[64];
    snprintf (nobody, sizeof nobody, "ipc:///tmp/aq-client-nobody-%d", (int) getpid ());
    aq_client_t *lonely = aq_client_new_ctx (ctx, nobody);
    assert (lonely);
    aq_client_set_timeout (lonely, 100);
    json_t *reply = (json_t *) 1;
    int64_t started = aq_time_mono_ms ();
    assert (aq_client_call (lonely, AQ_CMD_TEAM_LIST, NULL, &reply) == -1);
    assert (errno == ENOTCONN && reply == NULL);
    int64_t took = aq_time_mono_ms () - started;
    assert (took >= 90 && took < 2000);
    assert (aq_client_send (lonely, AQ_CMD_STATS, NULL) == -1 && errno == ENOTCONN);
    aq_client_destroy (&lonely);
    assert (lonely == NULL);

    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    assert (router);
    assert (zmq_bind (router, S_TEST_ENDPOINT) == 0);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_fake_broker, router) == 0);

    aq_client_t *client = aq_client_new_ctx (ctx, S_TEST_ENDPOINT);
    assert (client);
    aq_client_set_key (client, "aq_test_key");
    aq_client_set_admin (client, "admintoken");
    aq_client_set_timeout (client, 2000);

    //  A call: corr, key and fields arrive; the reply is the whole REPLY.
    json_t *fields = json_pack ("{s:s}", "id", "abc");
    assert (aq_client_call (client, AQ_CMD_TASK_CANCEL, fields, &reply) == 200);
    json_t *request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_TASK_CANCEL);
    assert (aq_field_int (request, "corr", 0) == aq_field_int (reply, "corr", -1));
    assert (s_streq (aq_field_str (request, "key"), "aq_test_key"));
    assert (json_object_get (request, "admin") == NULL);
    assert (s_streq (aq_field_str (request, "id"), "abc"));
    assert (json_object_size (fields) == 1); //  the caller's fields are untouched
    json_decref (fields);
    json_decref (reply);

    //  Admin commands carry the admin token, not the key; STATS both.
    assert (aq_client_call (client, AQ_CMD_TEAM_LIST, NULL, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (s_streq (aq_field_str (request, "admin"), "admintoken"));
    assert (json_object_get (request, "key") == NULL);
    json_decref (reply);
    assert (aq_client_stats (client, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_str (request, "admin") && aq_field_str (request, "key"));
    json_decref (reply);

    //  Only a key: it goes with everything. A key in fields wins (AUTH).
    aq_client_set_admin (client, NULL);
    assert (aq_client_call (client, AQ_CMD_KEY_LIST, NULL, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (s_streq (aq_field_str (request, "key"), "aq_test_key"));
    json_decref (reply);
    fields = json_pack ("{s:s}", "key", "other");
    assert (aq_client_call (client, AQ_CMD_AUTH, fields, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (s_streq (aq_field_str (request, "key"), "other"));
    json_decref (fields);
    json_decref (reply);

    //  Wrappers build their fields.
    json_t *task = json_pack ("{s:s}", "targetUrl", "http://example.com/");
    assert (aq_client_task_create (client, task, "idem-1", &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (json_equal (json_object_get (request, "task"), task));
    assert (s_streq (aq_field_str (request, "idem"), "idem-1"));
    json_decref (reply);
    json_decref (task);
    assert (aq_client_task_get (client, "t1", 3, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "wait", 0) == 3);
    assert (s_streq (aq_field_str (request, "id"), "t1"));
    json_decref (reply);
    json_t *tasks = json_pack ("[{s:s}]", "targetUrl", "http://example.com/");
    assert (aq_client_task_batch (client, tasks, "b-1", &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_TASK_BATCH);
    assert (json_equal (json_object_get (json_object_get (request, "batch"), "tasks"), tasks));
    assert (s_streq (aq_field_str (request, "idem"), "b-1"));
    json_decref (reply);
    json_decref (tasks);
    json_t *bulk = json_pack ("{s:s, s:{s:s}}", "action", "retry", "filter", "status", "failed");
    assert (aq_client_task_bulk (client, bulk, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_TASK_BULK);
    assert (json_equal (json_object_get (request, "bulk"), bulk));
    json_decref (reply);
    json_decref (bulk);
    assert (aq_client_whoami (client, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_AUTH && aq_field_str (request, "key"));
    json_decref (reply);
    assert (aq_client_bulk_get (client, "b1", &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_BULK_GET);
    assert (s_streq (aq_field_str (request, "id"), "b1"));
    json_decref (reply);
    json_t *limits = json_pack ("{s:i, s:i}", "rate", 10, "parallelism", 4);
    assert (aq_client_flow_set (client, "fal-prod", limits, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_FLOW_SET);
    assert (s_streq (aq_field_str (request, "id"), "fal-prod"));
    assert (json_equal (json_object_get (request, "limits"), limits));
    json_decref (reply);
    json_decref (limits);
    assert (aq_client_flow_pause (client, "fal-prod", false, &reply) == 200);
    request = json_object_get (aq_client_reply_body (reply), "request");
    assert (aq_field_int (request, "cmd", 0) == AQ_CMD_FLOW_RESUME);
    json_decref (reply);
    assert (aq_client_flow_get (client, "fal-prod", &reply) == 200);
    json_decref (reply);
    assert (aq_client_flow_list (client, NULL, &reply) == 200);
    json_decref (reply);

    //  Timeout: the reply comes after we gave up, and the next call drops it.
    aq_client_set_timeout (client, 100);
    fields = json_pack ("{s:s}", "mode", "slow");
    started = aq_time_mono_ms ();
    assert (aq_client_call (client, AQ_CMD_TASK_GET, fields, &reply) == -1);
    assert (errno == ETIMEDOUT && reply == NULL);
    took = aq_time_mono_ms () - started;
    assert (took >= 90 && took < 550);
    int64_t slow_corr = client->corr;
    json_decref (fields);
    aq_client_set_timeout (client, 2000);
    assert (aq_client_call (client, AQ_CMD_TASK_LIST, NULL, &reply) == 200);
    assert (aq_field_int (reply, "corr", 0) == slow_corr + 1);
    json_decref (reply);

    //  Stale replies, heartbeats and garbage before the real one are dropped.
    fields = json_pack ("{s:s}", "mode", "stale");
    assert (aq_client_call (client, AQ_CMD_TASK_GET, fields, &reply) == 404);
    assert (aq_field_int (reply, "corr", 0) == client->corr);
    assert (s_streq (aq_client_reply_error (reply), "Task not found"));
    assert (aq_client_reply_task (reply) == NULL);
    json_decref (fields);
    json_decref (reply);

    //  An ERROR from the broker ends the call.
    fields = json_pack ("{s:s}", "mode", "error");
    assert (aq_client_call (client, AQ_CMD_TASK_GET, fields, &reply) == 400);
    assert (s_streq (aq_client_reply_error (reply), "malformed message"));
    json_decref (fields);
    json_decref (reply);

    //  Pipelining: 20 held requests answered newest first, matched by corr.
    fields = json_pack ("{s:s}", "mode", "hold");
    int64_t sent[21];
    for (int i = 0; i < 20; i++) {
        sent[i] = aq_client_send (client, AQ_CMD_TASK_CREATE, fields);
        assert (sent[i] > 0 && (i == 0 || sent[i] == sent[i - 1] + 1));
    }
    json_object_set_new (fields, "mode", json_string ("flush"));
    sent[20] = aq_client_send (client, AQ_CMD_TASK_CREATE, fields);
    json_decref (fields);
    bool seen[21] = {false};
    for (int i = 0; i < 21; i++) {
        int64_t corr = 0;
        int status = aq_client_recv (client, &corr, &reply, 2000);
        assert (corr >= sent[0] && corr <= sent[20] && !seen[corr - sent[0]]);
        seen[corr - sent[0]] = true;
        assert (status == (corr == sent[20] ? 200 : 202));
        assert (i != 0 || corr == sent[19]); //  newest held first
        json_decref (reply);
    }
    int64_t corr = 0;
    assert (aq_client_recv (client, &corr, &reply, 0) == -1 && errno == EAGAIN);
    assert (reply == NULL);

    fields = json_pack ("{s:s}", "mode", "quit");
    assert (aq_client_call (client, AQ_CMD_STATS, fields, &reply) == 200);
    json_decref (fields);
    json_decref (reply);
    pthread_join (thread, NULL);
    aq_client_destroy (&client);
    zmq_close (router);
    zmq_ctx_term (ctx);
    if (verbose)
        printf ("aq_client: ok\n");
}
