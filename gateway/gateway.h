/*  gateway.h - the asyncqueue REST gateway (libmicrohttpd + one DEALER)

    Stateless: translates /v1/tasks and friends into protocol requests and
    replies back into JSON. Any number of gateways may front one broker.
*/
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "options.h"
#include "aq_actor.h"
#include <stdbool.h>
#include <stddef.h>

//  Runs as the component of actor (aq_actor.h): READY once listening, until
//  a stop command. Returns 0, or -1 when it cannot listen or connect
//  (logged as one line).
int gw_gateway_run (const gw_config_t *cfg, aq_actor_t *actor);

#endif
