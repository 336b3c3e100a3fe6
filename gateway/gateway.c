/*  gateway.c - the REST gateway's loop: one DEALER to the broker, one HTTP server

    for (;;) { zmq_poll (DEALER + the HTTP server's epoll fd, its timeout);
               drain the DEALER (its fd signals an edge, not a message);
               run the HTTP server; }
    Nothing here outlives a request: any number of gateways can front one
    broker, and a restarted gateway has nothing to recover.
*/
#include "gateway.h"
#include "aq_curve.h"
#include "http.h"

#include "aq_log.h"
#include "aq_codec.h"
#include "aq_notify.h"
#include "aq_time.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#define S_HWM 100000 //  messages queued each way before sends fail

void gw_config_defaults (gw_config_t *cfg) {
    assert (cfg);
    *cfg = (gw_config_t){
        .listen = "127.0.0.1:8080",
        .broker_endpoint = "ipc://data/client.ipc",
        .max_body = 1 << 20,
        .max_connections = 20000,
        .per_ip_connections = 1000,
        .connection_timeout_s = 30,
        .request_deadline_s = 60,
        .verbose = false,
    };
}

//  Each connection is a descriptor: lift the soft limit towards the hard
//  one so max_connections can be reached.
static void s_raise_fd_limit (int connections) {
    rlim_t wanted = (rlim_t) connections + 64; //  and a few of our own
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
        return;
    limit.rlim_cur =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max > wanted ? wanted : limit.rlim_max;
    setrlimit (RLIMIT_NOFILE, &limit);
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t) connections)
        aq_log (AQ_LOG_WARN, "gateway", "only %llu file descriptors for %d connections",
                (unsigned long long) limit.rlim_cur, connections);
}

//  Hands every message waiting on the DEALER to the HTTP side.
static void s_drain (void *dealer, gw_http_t *http) {
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            return;
        }
        int rc = gw_http_deliver (http, zmq_msg_data (&frame), zmq_msg_size (&frame));
        if (rc != 0)
            aq_log (AQ_LOG_WARN, "gateway", "dropped a message from the broker: %s",
                    aq_proto_strerror (rc));
        zmq_msg_close (&frame);
    }
}

int gw_gateway_run (const gw_config_t *cfg, aq_actor_t *actor) {
    assert (cfg && actor);
    void *zmq_ctx = aq_actor_ctx (actor);
    s_raise_fd_limit (cfg->max_connections);
    aq_curve_t *curve = NULL;
    if (cfg->cert || cfg->broker_cert) {
        char err[512];
        curve = aq_curve_new_client (cfg->cert, cfg->broker_cert, err, sizeof err);
        if (!curve) {
            aq_log (AQ_LOG_ERROR, "gateway", "%s", err);
            return -1;
        }
    }
    void *dealer = zmq_socket (zmq_ctx, ZMQ_DEALER);
    if (!dealer || (curve && aq_curve_apply (curve, dealer) != 0)) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot create the broker socket: %s",
                zmq_strerror (errno));
        if (dealer)
            zmq_close (dealer);
        aq_curve_destroy (&curve);
        return -1;
    }
    aq_curve_destroy (&curve); //  the socket keeps its keys
    int linger = 0, hwm = S_HWM;
    int64_t max_msg = AQ_PROTO_MAX_MSG;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    if (zmq_connect (dealer, cfg->broker_endpoint) != 0) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot connect to broker '%s': %s", cfg->broker_endpoint,
                zmq_strerror (errno));
        zmq_close (dealer);
        return -1;
    }
    gw_http_t *http = gw_http_new (cfg, dealer);
    if (!http) {
        zmq_close (dealer);
        return -1;
    }
    aq_log (AQ_LOG_INFO, "gateway", "broker at '%s'", cfg->broker_endpoint);
    aq_actor_ready (actor);
    aq_notify_ready ("gateway"); //  listening
    int loop = aq_notify_loop_new ("gateway");
    int rc = 0;
    while (aq_actor_level (actor) == AQ_ACTOR_RUN) {
        aq_notify_loop_turn (loop);
        zmq_pollitem_t items[] = {{dealer, 0, ZMQ_POLLIN, 0},
                                  {NULL, gw_http_fd (http), ZMQ_POLLIN, 0},
                                  {aq_actor_socket (actor), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 3, gw_http_timeout (http)) < 0 && errno != EINTR) {
            if (errno != ETERM) {
                aq_log (AQ_LOG_ERROR, "gateway", "cannot poll: %s", zmq_strerror (errno));
                rc = -1;
            }
            break;
        }
        if (items[2].revents & ZMQ_POLLIN)
            aq_actor_command (actor);
        s_drain (dealer, http);
        gw_http_run (http);
    }
    aq_notify_stopping ();
    aq_notify_loop_end (loop);
    gw_http_destroy (&http);
    zmq_close (dealer);
    aq_log (AQ_LOG_INFO, "gateway", "stopped");
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: the real loop in a thread, a fake broker (tests/rig_broker), a
//  blocking client (tests/rig_http).

#include "../tests/rig_broker.h"
#include "../tests/rig_http.h"

#include <pthread.h>

static int s_serve (const void *cfg, aq_actor_t *actor) {
    return gw_gateway_run ((const gw_config_t *) cfg, actor);
}

typedef struct {
    int port;            //  where to connect
    const char *request; //  what to send
    char *text;          //  the response, malloc'd
} s_fetch_t;

static void *s_fetcher (void *arg) {
    s_fetch_t *fetch = (s_fetch_t *) arg;
    fetch->text = rig_http_fetch (fetch->port, fetch->request);
    return NULL;
}

void gw_gateway_test (bool verbose) {
    if (verbose)
        printf (" * gw_gateway: ");
    void *ctx = zsys_init (); //  the actors' context

    //  Startup failures: the actor does not start
    gw_config_t cfg;
    gw_config_defaults (&cfg);
    assert (cfg.max_body == 1048576 && strcmp (cfg.listen, "127.0.0.1:8080") == 0);
    cfg.broker_endpoint = "bogus://x";
    assert (aq_actor_start ("gw-test", s_serve, &cfg) == NULL);
    cfg.broker_endpoint = "inproc://gw-gateway-test";
    cfg.listen = "256.0.0.1:80";
    assert (aq_actor_start ("gw-test", s_serve, &cfg) == NULL);

    //  The loop serves until stopped; a fake broker answers one request
    rig_broker_t *broker = rig_broker_new (ctx, "inproc://gw-gateway-test");
    gw_config_defaults (&cfg);
    cfg.broker_endpoint = "inproc://gw-gateway-test";
    char listen_on[32];
    int port = rig_http_free_port ();
    snprintf (listen_on, sizeof listen_on, "127.0.0.1:%d", port);
    cfg.listen = listen_on;
    zactor_t *gateway = aq_actor_start ("gw-test", s_serve, &cfg);
    assert (gateway);

    //  A client thread asks; this thread plays the broker
    s_fetch_t fetch = {.port = port,
                       .request = "GET /v1/tasks/abc/attempts HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer k\r\nConnection: close\r\n\r\n"};
    pthread_t client;
    assert (pthread_create (&client, NULL, s_fetcher, &fetch) == 0);
    bool answered = false;
    int64_t until = aq_time_mono_ms () + 5000;
    while (!answered && aq_time_mono_ms () < until) {
        aq_node_t msg, id, corr;
        if (rig_broker_recv_msg (broker, &msg, 100) == AQ_CMD_TASK_ATTEMPTS) {
            assert (aq_node_get (&msg, "id", &id) && aq_node_streq (&id, "abc"));
            assert (aq_node_get (&msg, "corr", &corr) && corr.type == AQ_NODE_INT);
            rig_broker_send_json (broker, AQ_CMD_REPLY,
                                  "{\"corr\": %lld, \"status\": 200, \"body\": {\"attempts\": []}}",
                                  (long long) corr.i);
            answered = true;
        }
    }
    assert (answered);
    pthread_join (client, NULL);
    assert (strstr (fetch.text, "HTTP/1.1 200 OK\r\n"));
    assert (strstr (fetch.text, "{\"attempts\":[]}"));
    free (fetch.text);

    assert (aq_actor_stop (&gateway, -1, NULL) == 0);
    rig_broker_destroy (&broker);
    if (verbose)
        printf ("OK\n");
}
