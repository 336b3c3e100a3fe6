/*  worker.h - an asyncqueue worker: a DEALER to the broker and a curl multi

    Announces `slots` credit with READY, runs up to that many HTTP calls at
    once, reports each as a RESULT, heartbeats, and reconnects when the broker
    goes silent. Holds no durable state.
*/
#ifndef WK_WORKER_H
#define WK_WORKER_H

#include "aq_actor.h"
#include <stdbool.h>

typedef struct {
    const char *broker_endpoint; //  the broker's worker ROUTER
    const char *cert;            //  our secret certificate for CURVE, or NULL
    const char *broker_cert;     //  the broker's public certificate (with cert)
    const char *name;            //  shown in broker stats (default: host:pid)
    int slots;                   //  calls in flight at once (default 64)
    bool allow_private;          //  lift the SSRF guard (development, tests)
    int heartbeat_ms;            //  heartbeat interval (default 1000)
    int heartbeat_liveness;      //  silent intervals before reconnecting (5)
    bool verbose;                //  log every call
} wk_config_t;

void wk_config_defaults (wk_config_t *cfg);

//  Runs as the component of actor (aq_actor.h): READY once connected, until
//  a stop command: in-flight calls are finished and reported first (bounded
//  by their timeouts; HURRY abandons them), then BYE. Returns 0, or -1 on a
//  startup failure (logged).
int wk_worker_run (const wk_config_t *cfg, aq_actor_t *actor);

#endif
