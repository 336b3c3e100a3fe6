/*  broker.h - the asyncqueue broker: one event loop that owns all state

    Sockets: a ROUTER for clients (gateways, internal services, aqctl), a
    ROUTER for workers, a PUB for task events. State lives in LMDB under
    data_dir. See docs/protocol.md for the dialogs.
*/
#ifndef BK_BROKER_H
#define BK_BROKER_H

#include "aq_actor.h"
#include "config.h"

//  Runs the broker as the component of actor (aq_actor.h): READY once its
//  store is open and its sockets bound, until a stop command. Its sockets
//  live in the actor's ZeroMQ context, shared with the other components
//  of the process (inproc endpoints). Returns 0 after a stop command, -1
//  when it could not start or its store failed (logged).
int bk_broker_run (const bk_config_t *cfg, aq_actor_t *actor);

#endif
