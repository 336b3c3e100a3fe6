/*  delay.h - the delay queue: items ordered by due time, in the store

    Entries are due ms(8, big-endian) kind(1) id(16) -> "" in BK_DB_DELAY:
    delayed tasks, retry back-off (and later poll intervals, timeouts and
    schedule fire times). A million idle entries cost no memory. Calls run
    inside the caller's transaction.
*/
#ifndef BK_DELAY_H
#define BK_DELAY_H

#include "store.h"
#include <stdbool.h>
#include <stdint.h>

#define BK_DELAY_TASK     1 //  a delayed or retrying task becomes ready
#define BK_DELAY_TIMEOUT  2 //  a waiting task's maxWaitTime ends
#define BK_DELAY_NOTIFY   3 //  an onCompleteUrl delivery is retried
#define BK_DELAY_POLL     4 //  a polling task's next status request
#define BK_DELAY_SCHEDULE 5 //  a scheduled task's next fire time (id: the schedule)
#define BK_DELAY_RUN      6 //  a failed run is retried from its failed step (id: the run)

int bk_delay_push (bk_store_t *store, int64_t due, int kind, const uint8_t id[16]);
int bk_delay_remove (bk_store_t *store, int64_t due, int kind, const uint8_t id[16]);
//  Earliest due time: 0 and *due, or BK_NOTFOUND when empty.
int bk_delay_next (bk_store_t *store, int64_t *due);
//  Removes and returns the earliest item due at or before now: 0, or
//  BK_NOTFOUND when nothing is due.
int bk_delay_pop (bk_store_t *store, int64_t now, int64_t *due, int *kind, uint8_t id[16]);

void bk_delay_test (bool verbose);

#endif
