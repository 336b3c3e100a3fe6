/*  gateway.h - the asyncqueue REST gateway (libmicrohttpd + one DEALER)

    Stateless: translates /v1/tasks and friends into protocol requests and
    replies back into JSON. Any number of gateways may front one broker.
*/
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "aq_actor.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *listen;          //  HOST:PORT (default 127.0.0.1:8080)
    const char *broker_endpoint; //  the broker's client ROUTER
    const char *cert;            //  our secret certificate for CURVE, or NULL
    const char *broker_cert;     //  the broker's public certificate (with cert)
    size_t max_body;             //  request body limit (default 1 MiB)
    int max_connections;         //  total (default 20000)
    int per_ip_connections;      //  per client address (default 1000)
    int connection_timeout_s;    //  idle timeout (default 30)
    int request_deadline_s;      //  absolute per-request deadline (default 60)
    bool verbose;
} gw_config_t;

void gw_config_defaults (gw_config_t *cfg);

//  Runs as the component of actor (aq_actor.h): READY once listening, until
//  a stop command. Returns 0, or -1 when it cannot listen or connect
//  (logged as one line).
int gw_gateway_run (const gw_config_t *cfg, aq_actor_t *actor);

#endif
