/*  upgrade_sched.h - the scheduler's records from layout 1 to layout 2

    upgrade.c walks the store's tables when it brings a layout-1 store to
    layout 2 (see upgrade.h) and hands each layout-1 record of the
    scheduler's tables to this one function: scheduled tasks
    (BK_DB_SCHEDULES), runs (BK_DB_RUNS) and concurrency records
    (BK_DB_RUN_KEYS entries whose kind byte, after the team id, is 'c'; the
    'd' entries are 8-byte times and do not change). The scheduler module
    owns these records' shapes, so it owns their conversion.

    A layout-1 record is a JSON document as the old scheduler built it
    (broker/old/scheduler.c, schedules.c: public fields plus bookkeeping
    with a leading underscore, times as integer ms) packed as a msgpack map
    with string keys.
*/
#ifndef BK_UPGRADE_SCHED_H
#define BK_UPGRADE_SCHED_H

#include "../store.h"

#include <stddef.h>

//  Returned when this build has no conversion for the record: it stays as
//  it is, and the store stays at layout 1 (nothing is lost; a build that
//  converts it finishes the upgrade).
#define BK_SCHED_UPGRADE_LEFT 1

//  Converts one layout-1 record v1 of table db stored under key (key_size
//  bytes) to its layout-2 record, appended to w (upgrade.c stores it under
//  the same key, in the same transaction). store is the open write
//  transaction, for a conversion that must read or write other records.
//  0 when converted; BK_SCHED_UPGRADE_LEFT; or -1 when the record cannot
//  be read, with the reason in why (why_size bytes, NUL-terminated; it
//  names the field, never a secret or a user's data).
int bk_sched_upgrade_record (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                             const aq_node_t *v1, aq_writer_t *w, char *why, size_t why_size);

#endif
