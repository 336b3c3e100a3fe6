/*  handlers.h - the client commands: who may send each, and its answer

    One table lists every client command with who may send it (an admin
    token, any key of the team, a full-scope key, or the handler decides)
    and its handler; the credentials are checked (and the team's rate limit
    taken) before the handler runs. Task and flow control commands are
    answered here; teams, keys and tokens by admin.c; bulk jobs by bulk.c;
    scheduled tasks and
    events by sched/.
*/
#ifndef BK_HANDLERS_H
#define BK_HANDLERS_H

#include "aq_msg.h"
#include "bulk.h"
#include "dispatch.h"
#include "engine.h"
#include "keys.h"
#include "limits.h"
#include "sched/scheduler.h"
#include "sockets.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bk_handlers_t bk_handlers_t;

//  Everything the commands work on, borrowed; admin is the admin token.
bk_handlers_t *bk_handlers_new (bk_engine_t *engine, bk_keys_t *keys, bk_dispatch_t *dispatch,
                                bk_scheduler_t *scheduler, bk_sockets_t *sockets, bk_bulk_t *bulk,
                                const char *admin);
void bk_handlers_destroy (bk_handlers_t **self_p);

//  Answers one client message (a checked frame's command and body) that
//  came in on socket from rid; every request gets exactly one answer.
void bk_handlers_request (bk_handlers_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                          int cmd, const aq_node_t *body);

//  Answers the held GET /v1/stats?wait whose team's tasks changed, or
//  whose time is up; once a turn, before the commit.
void bk_handlers_tick (bk_handlers_t *self);
//  The earliest deadline of a held request (mono ms), INT64_MAX if none.
int64_t bk_handlers_next_deadline (bk_handlers_t *self);

//  Who may send a client command (the table in handlers.c).
typedef enum {
    BK_ACCESS_OWN,   //  the handler checks (STATS: key or admin; TASK_SIGNAL: key or sig_ token)
    BK_ACCESS_ADMIN, //  the admin token
    BK_ACCESS_READ,  //  any API key of the team
    BK_ACCESS_WRITE  //  a full-scope API key
} bk_access_t;
//  cmd's access (a bk_access_t), -1 for no client command; *count, when
//  count is not NULL, the commands in the table.
int bk_handlers_access (int cmd, size_t *count);

void bk_handlers_test (bool verbose);

#endif
