/*  worker.c - an asyncqueue worker: the DEALER dialog with the broker

    One loop, Majordomo-like: zmq_poll over the DEALER socket and the sockets
    of every call in flight (callout.c); JOB, HEARTBEAT and ERROR come in;
    READY, RESULT, HEARTBEAT and finally BYE go out. Credit is free slots:
    READY announces them, each JOB takes one, each RESULT gives one back.

    RESULTs wait in an outbox until ZeroMQ takes them. ZMQ_IMMEDIATE makes
    ZeroMQ refuse them while no broker is connected, so they stay with us
    rather than in a pipe that a reconnect would throw away.
*/
#include "worker.h"
#include "aq_curve.h"
#include "aq_log.h"
#include "aq_codec.h"
#include "aq_notify.h"
#include "aq_time.h"
#include "callout.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_LINGER_MS        1000 //  ZeroMQ may go on delivering this long after close
#define S_RECONNECT_IVL_MS 100  //  ZeroMQ's first reconnect interval
#define S_RECONNECT_MAX_MS 1000 //  and its longest
#define S_POLL_MAX_MS      100  //  longest sleep: how soon a stop request is seen
#define S_RECV_BURST       256  //  messages read per wake-up before doing the rest

typedef struct {
    const wk_config_t *cfg; //  settings, the caller's
    void *ctx;              //  ZeroMQ context, the caller's
    void *socket;           //  DEALER to the broker
    aq_curve_t *curve;      //  our CURVE keys and the broker's, or NULL
    wk_callout_t *callout;  //  the calls in flight
    json_t *outbox;         //  RESULT bodies ZeroMQ has not taken, oldest first
    bool ready_due;         //  READY not yet sent on this socket
    bool stopping;          //  finishing: no new jobs
    bool up;                //  the broker has spoken: systemd was told
    int loop;               //  our handle for the watchdog (aq_notify)
    int64_t heard;          //  when the broker last spoke, mono ms
    int64_t beat_at;        //  next HEARTBEAT, mono ms
    char name[128];         //  told to the broker in READY
} s_worker_t;

void wk_config_defaults (wk_config_t *cfg) {
    *cfg = (wk_config_t){.broker_endpoint = "ipc://data/worker.ipc",
                         .slots = 64,
                         .heartbeat_ms = 1000,
                         .heartbeat_liveness = 5};
}

//  Free slots as the broker should count them: results not yet sent still
//  hold theirs.
static int s_credit (s_worker_t *self) {
    size_t used = wk_callout_active (self->callout) + json_array_size (self->outbox);
    return used < (size_t) self->cfg->slots ? self->cfg->slots - (int) used : 0;
}

//  A new DEALER to the broker; READY is due on it. 0, or -1 with errno.
static int s_connect (s_worker_t *self) {
    self->socket = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!self->socket)
        return -1;
    if (self->curve && aq_curve_apply (self->curve, self->socket) != 0) {
        int error = errno;
        zmq_close (self->socket);
        self->socket = NULL;
        errno = error;
        return -1;
    }
    int linger = S_LINGER_MS, ivl = S_RECONNECT_IVL_MS, ivl_max = S_RECONNECT_MAX_MS;
    int immediate = 1;
    int64_t max_msg = AQ_PROTO_MAX_MSG;
    zmq_setsockopt (self->socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->socket, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    zmq_setsockopt (self->socket, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (self->socket, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt (self->socket, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    if (zmq_connect (self->socket, self->cfg->broker_endpoint) != 0) {
        int error = errno;
        zmq_close (self->socket);
        self->socket = NULL;
        errno = error;
        return -1;
    }
    self->ready_due = true;
    self->heard = aq_time_mono_ms ();
    return 0;
}

//  Hands READY (when due) and then the outbox to ZeroMQ, as far as it takes
//  them; the rest waits for the next turn.
static void s_flush (s_worker_t *self) {
    if (self->ready_due && !self->stopping) {
        int credit = s_credit (self);
        json_t *ready = json_pack ("{s:i, s:s}", "credit", credit, "name", self->name);
        int rc = aq_codec_send (self->socket, NULL, 0, AQ_CMD_READY, ready, ZMQ_DONTWAIT);
        json_decref (ready);
        if (rc != 0)
            return; //  no broker yet; READY goes first when there is
        self->ready_due = false;
        aq_log (AQ_LOG_DEBUG, "worker", "READY with credit %d", credit);
    }
    while (json_array_size (self->outbox)) {
        json_t *result = json_array_get (self->outbox, 0);
        if (aq_codec_send (self->socket, NULL, 0, AQ_CMD_RESULT, result, ZMQ_DONTWAIT) != 0) {
            if (errno != EINVAL)
                return; //  EAGAIN: no broker, or its queue is full
            const char *id = json_string_value (json_object_get (result, "id"));
            aq_log_task (AQ_LOG_ERROR, "worker", id, NULL, "cannot encode the result of task '%s'",
                         id);
        }
        json_array_remove (self->outbox, 0);
    }
}

static void s_log_result (const json_t *result) {
    const char *id = json_string_value (json_object_get (result, "id"));
    const char *error = json_string_value (json_object_get (result, "error"));
    json_int_t attempt = json_integer_value (json_object_get (result, "attempt"));
    json_int_t duration = json_integer_value (json_object_get (result, "duration"));
    if (error)
        aq_log_task (AQ_LOG_INFO, "worker", id, NULL, "task '%s' attempt %lld: %s (%lld ms)",
                     id ? id : "", (long long) attempt, error, (long long) duration);
    else
        aq_log_task (AQ_LOG_INFO, "worker", id, NULL,
                     "task '%s' attempt %lld: HTTP %lld in %lld ms", id ? id : "",
                     (long long) attempt,
                     (long long) json_integer_value (json_object_get (result, "statusCode")),
                     (long long) duration);
}

static void s_take_job (s_worker_t *self, const json_t *job) {
    const char *refusal = self->stopping         ? "worker shutting down"
                          : s_credit (self) == 0 ? "worker over capacity"
                                                 : NULL;
    if (!refusal) {
        wk_callout_start (self->callout, job); //  a job that cannot start has its result at once
        return;
    }
    const char *id = json_string_value (json_object_get (job, "id"));
    aq_log_task (self->stopping ? AQ_LOG_DEBUG : AQ_LOG_WARN, "worker", id, NULL,
                 "task '%s' refused: %s", id ? id : "", refusal);
    json_t *result = wk_callout_result_new (job);
    if (result) {
        json_object_set_new (result, "duration", json_integer (0));
        json_object_set_new (result, "error", json_string (refusal));
        json_object_set_new (result, "refused", json_true ());
    }
    if (result)
        json_array_append_new (self->outbox, result);
}

static void s_on_message (s_worker_t *self, int cmd, const json_t *body) {
    if (cmd == AQ_CMD_JOB)
        s_take_job (self, body);
    else if (cmd == AQ_CMD_ERROR && aq_field_int (body, "code", 0) == 410)
        self->ready_due = true; //  the broker does not know us (it restarted)
    else if (cmd == AQ_CMD_ERROR) {
        const char *reason = aq_field_str (body, "reason");
        aq_log (AQ_LOG_WARN, "worker", "broker error %lld: %s",
                (long long) aq_field_int (body, "code", 0), reason ? reason : "");
    } else if (cmd != AQ_CMD_HEARTBEAT)
        aq_log (AQ_LOG_DEBUG, "worker", "dropped %s from the broker", aq_proto_name (cmd));
}

//  Reads what the broker sent; undecodable frames are dropped.
static void s_receive (s_worker_t *self) {
    for (int i = 0; i < S_RECV_BURST; i++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            return;
        }
        int cmd;
        json_t *body = NULL;
        int rc = aq_codec_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &cmd, &body);
        zmq_msg_close (&msg);
        if (rc != 0) {
            aq_log (AQ_LOG_DEBUG, "worker", "dropped a frame from the broker: %s",
                    aq_proto_strerror (rc));
            continue;
        }
        self->heard = aq_time_mono_ms ();
        if (!self->up) {
            self->up = true;
            aq_notify_ready ("worker");
        }
        s_on_message (self, cmd, body);
        json_decref (body);
    }
}

//  libcurl's TLS library (OpenSSL) keeps state per thread that it frees
//  when the thread ends. A worker runs in a zactor's thread, which is
//  detached: the process may exit a moment before that thread's end, and
//  the state would be reported as leaked. Free it where the calls end.
static void s_tls_thread_end (void) {
    void (*stop) (void) = (void (*) (void)) dlsym (RTLD_DEFAULT, "OPENSSL_thread_stop");
    if (stop)
        stop ();
}

int wk_worker_run (const wk_config_t *cfg, aq_actor_t *actor) {
    assert (cfg && actor);
    s_worker_t self = {.cfg = cfg, .ctx = aq_actor_ctx (actor), .loop = -1};
    int rc = -1;
    int items_max = 2 * cfg->slots + 16;
    zmq_pollitem_t *items = NULL;
    if (cfg->name)
        snprintf (self.name, sizeof self.name, "%s", cfg->name);
    else {
        char host[64] = "worker";
        gethostname (host, sizeof host - 1);
        snprintf (self.name, sizeof self.name, "%s:%d", host, (int) getpid ());
    }
    if (cfg->slots < 1 || cfg->heartbeat_ms < 1 || cfg->heartbeat_liveness < 1) {
        aq_log (AQ_LOG_ERROR, "worker", "slots, heartbeat and liveness must be positive");
        goto out;
    }
    if (cfg->cert || cfg->broker_cert) {
        char err[512];
        self.curve = aq_curve_new_client (cfg->cert, cfg->broker_cert, err, sizeof err);
        if (!self.curve) {
            aq_log (AQ_LOG_ERROR, "worker", "%s", err);
            goto out;
        }
    }
    self.callout = wk_callout_new (cfg->allow_private);
    self.outbox = json_array ();
    items = calloc ((size_t) items_max, sizeof *items);
    if (!self.callout || !self.outbox || !items) {
        aq_log (AQ_LOG_ERROR, "worker", "cannot set up HTTP calls");
        goto out;
    }
    if (s_connect (&self) != 0) {
        aq_log (AQ_LOG_ERROR, "worker", "cannot connect to broker '%s': %s", cfg->broker_endpoint,
                zmq_strerror (errno));
        goto out;
    }
    aq_log (AQ_LOG_INFO, "worker", "'%s' working for broker '%s' with %d slots%s", self.name,
            cfg->broker_endpoint, cfg->slots,
            cfg->allow_private ? ", private targets allowed" : "");
    aq_actor_ready (actor);
    rc = 0;
    self.loop = aq_notify_loop_new ("worker");
    const int64_t silence = (int64_t) cfg->heartbeat_ms * cfg->heartbeat_liveness;
    int64_t drain_until = -1; //  when stopping: give up on undelivered results then
    self.beat_at = aq_time_mono_ms () + cfg->heartbeat_ms;
    for (;;) {
        aq_notify_loop_turn (self.loop);
        int64_t now = aq_time_mono_ms ();
        int stop_level = aq_actor_level (actor);
        if (stop_level && !self.stopping) {
            self.stopping = true;
            aq_notify_stopping ();
            aq_log (AQ_LOG_INFO, "worker", "stopping: %zu calls in flight",
                    wk_callout_active (self.callout));
        }
        if (stop_level > 1) {
            aq_log (AQ_LOG_WARN, "worker", "stopping now: %zu calls abandoned",
                    wk_callout_active (self.callout));
            break;
        }
        if (self.stopping && wk_callout_active (self.callout) == 0) {
            s_flush (&self);
            if (json_array_size (self.outbox) == 0)
                break;
            if (drain_until < 0)
                drain_until = now + silence;
            else if (now >= drain_until) {
                aq_log (AQ_LOG_WARN, "worker", "%zu results not delivered: the broker retries them",
                        json_array_size (self.outbox));
                break;
            }
        }
        if (!self.stopping && now - self.heard > silence) {
            aq_log (AQ_LOG_WARN, "worker", "no word from broker '%s' in %lld ms: reconnecting",
                    cfg->broker_endpoint, (long long) (now - self.heard));
            zmq_close (self.socket);
            if (s_connect (&self) != 0) {
                aq_log (AQ_LOG_ERROR, "worker", "cannot reconnect to broker '%s': %s",
                        cfg->broker_endpoint, zmq_strerror (errno));
                rc = -1;
                goto out;
            }
        }
        if (now >= self.beat_at) {
            if (!self.ready_due)
                aq_codec_send (self.socket, NULL, 0, AQ_CMD_HEARTBEAT, NULL, ZMQ_DONTWAIT);
            self.beat_at = now + cfg->heartbeat_ms;
        }
        s_flush (&self);

        //  Poll the broker and every call; wake for curl, heartbeats and stop
        int n;
        while ((n = wk_callout_poll_items (self.callout, items + 2, items_max - 2)) >
               items_max - 2) {
            zmq_pollitem_t *more = realloc (items, (size_t) (n + 17) * sizeof *items);
            if (!more)
                break; //  poll what fits; curl's timeouts still bound every call
            items = more;
            items_max = n + 17;
        }
        n = n < items_max - 2 ? n : items_max - 2;
        bool pending = (self.ready_due && !self.stopping) || json_array_size (self.outbox);
        items[0] = (zmq_pollitem_t){.socket = self.socket,
                                    .events = ZMQ_POLLIN | (pending ? ZMQ_POLLOUT : 0)};
        long timeout = (long) (self.beat_at - now);
        long curl_timeout = wk_callout_timeout_ms (self.callout);
        timeout = curl_timeout >= 0 && curl_timeout < timeout ? curl_timeout : timeout;
        timeout = timeout < 0 ? 0 : timeout > S_POLL_MAX_MS ? S_POLL_MAX_MS : timeout;
        items[1] = (zmq_pollitem_t){.socket = aq_actor_socket (actor), .events = ZMQ_POLLIN};
        int ready = zmq_poll (items, n + 2, timeout);
        if (ready < 0 && errno == ETERM)
            break; //  the context is going away: no more talking
        if (ready > 0 && (items[0].revents & ZMQ_POLLIN))
            s_receive (&self);
        if (ready > 0 && (items[1].revents & ZMQ_POLLIN))
            aq_actor_command (actor);
        wk_callout_handle (self.callout, items + 2, ready > 0 ? n : 0);
        json_t *result;
        while ((result = wk_callout_next_result (self.callout))) {
            if (cfg->verbose)
                s_log_result (result);
            json_array_append_new (self.outbox, result);
        }
    }
    s_flush (&self);
    aq_codec_send (self.socket, NULL, 0, AQ_CMD_BYE, NULL, ZMQ_DONTWAIT);
    aq_log (AQ_LOG_INFO, "worker", "'%s' stopped", self.name);
out:
    aq_notify_loop_end (self.loop);
    if (self.socket)
        zmq_close (self.socket);
    aq_curve_destroy (&self.curve);
    wk_callout_destroy (&self.callout);
    json_decref (self.outbox);
    free (items);
    s_tls_thread_end ();
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: a worker thread against a fake broker (tests/rig_broker) over
//  inproc, calling ports that refuse or hang (tests/rig_http).

#include "../tests/rig_broker.h"
#include "../tests/rig_http.h"

static int s_serve (const void *cfg, aq_actor_t *actor) {
    return wk_worker_run ((const wk_config_t *) cfg, actor);
}

static void s_broker_job (rig_broker_t *broker, const char *id, const char *url, int timeout) {
    rig_broker_send (broker, AQ_CMD_JOB,
                     json_pack ("{s:s, s:i, s:s, s:s, s:{}, s:i, s:i}", "id", id, "attempt", 3,
                                "url", url, "method", "POST", "headers", "timeout", timeout,
                                "maxBody", 100));
}

//  Expects a RESULT for task id with error text within ms.
static void s_expect_result (rig_broker_t *broker, const char *id, const char *error, int ms) {
    json_t *body;
    int cmd = rig_broker_recv (broker, &body, ms);
    while (cmd == AQ_CMD_READY) { //  a reconnect when the test was too slow to heartbeat
        json_decref (body);
        cmd = rig_broker_recv (broker, &body, ms);
    }
    if (cmd != AQ_CMD_RESULT || !body)
        fprintf (stderr, "expected RESULT of '%s', got %d\n", id, cmd);
    assert (cmd == AQ_CMD_RESULT);
    const char *got_id = aq_field_str (body, "id"), *got_error = aq_field_str (body, "error");
    if (strcmp (got_id, id) != 0 || strcmp (got_error, error) != 0)
        fprintf (stderr, "expected '%s' '%s', got '%s' '%s'\n", id, error, got_id, got_error);
    assert (strcmp (got_id, id) == 0 && strcmp (got_error, error) == 0);
    assert (aq_field_int (body, "attempt", 0) == 3);
    json_decref (body);
}

static void s_expect_ready (rig_broker_t *broker, int credit, int ms) {
    json_t *body;
    int cmd = rig_broker_recv (broker, &body, ms);
    assert (cmd == AQ_CMD_READY);
    assert (aq_field_int (body, "credit", -1) == credit);
    assert (strcmp (aq_field_str (body, "name"), "test-worker") == 0);
    json_decref (body);
}

void wk_worker_test (bool verbose) {
    aq_log_set_level (verbose ? AQ_LOG_DEBUG : AQ_LOG_ERROR + 1); //  quiet unless verbose
    void *ctx = zsys_init ();                                     //  the actors' context
    wk_config_t cfg;
    wk_config_defaults (&cfg);
    assert (cfg.slots == 64 && cfg.heartbeat_ms == 1000);
    assert (cfg.heartbeat_liveness == 5);

    //  A broker endpoint ZeroMQ cannot use is a startup failure
    cfg.broker_endpoint = "nonsense://x";
    assert (aq_actor_start ("wk-test", s_serve, &cfg) == NULL);

    rig_broker_t *broker = rig_broker_new (ctx, "inproc://wk-worker-test");
    rig_broker_beat (broker, 20);
    cfg = (wk_config_t){.broker_endpoint = "inproc://wk-worker-test",
                        .name = "test-worker",
                        .slots = 2,
                        .allow_private = true,
                        .heartbeat_ms = 100,
                        .heartbeat_liveness = 5,
                        .verbose = verbose};
    zactor_t *worker = aq_actor_start ("wk-test", s_serve, &cfg);
    assert (worker);
    s_expect_ready (broker, 2, 2000);

    //  A call that fails; frames that are not ours are dropped
    char refused[64], hang[64];
    int hang_fd = -1;
    snprintf (refused, sizeof refused, "http://127.0.0.1:%d/", rig_http_free_port ());
    snprintf (hang, sizeof hang, "http://127.0.0.1:%d/", rig_http_silent_port (&hang_fd));
    s_broker_job (broker, "a", refused, 5);
    s_expect_result (broker, "a", "fetch failed: ECONNREFUSED", 2000);
    rig_broker_send_raw (broker, "garbage", 7);
    rig_broker_send (broker, AQ_CMD_READY, json_pack ("{s:i}", "credit", 1));
    rig_broker_send (broker, AQ_CMD_ERROR, json_pack ("{s:i, s:s}", "code", 400, "reason", "x"));
    s_broker_job (broker, "b", "ftp://127.0.0.1/", 5);
    s_expect_result (broker, "b", "invalid URL", 2000);

    //  ERROR 410: the broker lost track of us; READY again
    rig_broker_send (broker, AQ_CMD_ERROR, json_pack ("{s:i, s:s}", "code", 410, "reason", "?"));
    s_expect_ready (broker, 2, 2000);

    //  More jobs than credit: the extra one is refused at once
    int64_t start = aq_time_mono_ms ();
    s_broker_job (broker, "c1", hang, 1);
    s_broker_job (broker, "c2", hang, 1);
    s_broker_job (broker, "c3", hang, 1);
    s_expect_result (broker, "c3", "worker over capacity", 500);
    assert (aq_time_mono_ms () - start < 500);
    s_expect_result (broker, "c1", "timeout after 1s", 3000);
    s_expect_result (broker, "c2", "timeout after 1s", 3000);

    //  A silent broker: the worker reconnects with the credit it has, and
    //  the result of a call that was in flight arrives on the new socket
    s_broker_job (broker, "d", hang, 1);
    uint8_t old_rid[256];
    size_t old_rid_size, rid_size;
    const uint8_t *rid = rig_broker_peer (broker, &old_rid_size);
    memcpy (old_rid, rid, old_rid_size);
    rig_broker_beat (broker, 0);
    s_expect_ready (broker, 1, 2000);
    rid = rig_broker_peer (broker, &rid_size);
    assert (rid_size != old_rid_size || memcmp (rid, old_rid, old_rid_size) != 0);
    rig_broker_beat (broker, 20);
    s_expect_result (broker, "d", "timeout after 1s", 3000);

    //  Stop: no new jobs, the call in flight finishes and reports, then BYE
    s_broker_job (broker, "e1", hang, 1);
    usleep (50 * 1000);
    zstr_send (worker, "STOP");
    usleep (250 * 1000);
    s_broker_job (broker, "e2", hang, 1);
    s_expect_result (broker, "e2", "worker shutting down", 1000);
    s_expect_result (broker, "e1", "timeout after 1s", 3000);
    json_t *body;
    assert (rig_broker_recv (broker, &body, 2000) == AQ_CMD_BYE);
    json_decref (body);
    assert (aq_actor_stop (&worker, -1, NULL) == 0);

    close (hang_fd);
    rig_broker_destroy (&broker);
}
