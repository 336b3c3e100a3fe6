/*  broker.h - the asyncqueue broker: one event loop that owns all state

    Sockets: a ROUTER for clients (gateways, internal services, aqctl), a
    ROUTER for workers, a PUB for task events. State lives in LMDB under
    data_dir. See docs/protocol.md for the dialogs.
*/
#ifndef BK_BROKER_H
#define BK_BROKER_H

#include "config.h"

#include <stdatomic.h>

//  Runs the broker until *stop becomes non-zero. zmq_ctx may be shared with
//  other components (inproc endpoints). Returns 0 after a clean shutdown, -1
//  on a startup failure (already logged as one line).
int bk_broker_run (const bk_config_t *cfg, void *zmq_ctx, const atomic_int *stop);

#endif
