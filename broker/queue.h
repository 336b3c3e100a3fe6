/*  queue.h - the ready queue: priority first, teams round-robin, then age

    Entries live in the store (BK_DB_READY) as 255-priority(1) team(16)
    seq(8) -> id(16), so the queue survives restarts and costs no memory.
    Within the highest non-empty priority, pop serves the team after the one
    served last, so one team's backlog never delays another team's task.
    Calls run inside the caller's write transaction.
*/
#ifndef BK_QUEUE_H
#define BK_QUEUE_H

#include "store.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_queue_t bk_queue_t;

bk_queue_t *bk_queue_new (bk_store_t *store);
void bk_queue_destroy (bk_queue_t **self_p);

//  0 or a store error.
int bk_queue_push (bk_queue_t *self, int priority, const uint8_t team[16], uint64_t seq,
                   const uint8_t id[16]);
int bk_queue_remove (bk_queue_t *self, int priority, const uint8_t team[16], uint64_t seq);
//  Takes the next task: 0 and fills id, BK_NOTFOUND when empty.
int bk_queue_pop (bk_queue_t *self, uint8_t id[16]);

void bk_queue_test (bool verbose);

#endif
