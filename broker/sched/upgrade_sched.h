/*  upgrade_sched.h - the scheduler's records from layout 1 to layout 2

    upgrade.c walks the store's tables when it brings a layout-1 store to
    layout 2 (see upgrade.h) and hands each layout-1 record of the
    scheduler's tables to this one function: scheduled tasks
    (BK_DB_SCHEDULES), runs (BK_DB_RUNS) and run keys (BK_DB_RUN_KEYS
    entries whose kind byte, after the team id, is 'c', a concurrency
    record, or 'd', a dedupe key's time). The scheduler module owns these
    records' shapes, so it owns their conversion (upgrade_sched.c lists
    where every layout-1 field goes).

    A layout-1 record is a JSON document as the old scheduler built it
    (the first release's broker/scheduler.c, schedules.c: public fields
    plus bookkeeping with a leading underscore, times as integer ms) packed
    as a msgpack map with string keys; a dedupe key's is 8 raw bytes (an
    int64 in host order), which upgrade.c hands over as a bin node of 8
    bytes (data and count set). Layout 2 writes neither shape: a record
    that is a map with integer keys, or a dedupe key's record that is not
    8 bytes long, is converted already.
*/
#ifndef BK_UPGRADE_SCHED_H
#define BK_UPGRADE_SCHED_H

#include "../store.h"
#include "../task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

//  ---- for the converters (upgrade_sched.c, upgrade_run.c) --------------

//  Where a converter says why a record cannot be read.
typedef struct {
    char *why;       //  the caller's buffer, NUL-terminated
    size_t why_size; //  its size
} bk_sched_why_t;

//  Fills why (printf-like); returns -1.
int bk_sched_upgrade_bad (bk_sched_why_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
//  "field '<prefix><name>' is malformed", and "unknown field '...'": -1.
int bk_sched_upgrade_malformed (bk_sched_why_t *self, const char *prefix, const aq_node_t *name);
int bk_sched_upgrade_unknown (bk_sched_why_t *self, const char *prefix, const aq_node_t *name);
//  Layout-1 values into out; each false when value is not of its kind.
//  UUID text as 16 bytes:
bool bk_sched_upgrade_uuid (const aq_node_t *value, uint8_t out[16]);
//  text without NUL, copied into arena (null: NULL, when nullable):
bool bk_sched_upgrade_text (bk_arena_t *arena, const aq_node_t *value, bool nullable, char **out);
//  an integer in 0..INT_MAX:
bool bk_sched_upgrade_count (const aq_node_t *value, int *out);
//  a time, integer ms >= 0 (null: -1, when nullable):
bool bk_sched_upgrade_time (const aq_node_t *value, bool nullable, int64_t *out);
//  a name parse (name, n) knows (it returns invalid for others):
bool bk_sched_upgrade_name (const aq_node_t *value, int (*parse) (const char *, size_t),
                            int invalid, int *out);
//  a name name_of (i) gives for an i in first..count-1:
bool bk_sched_upgrade_named (const aq_node_t *value, const char *(*name_of) (int), int first,
                             int count, int *out);
//  a map or an array (type): its msgpack bytes, copied into arena:
bool bk_sched_upgrade_raw (bk_arena_t *arena, const aq_node_t *value, aq_node_type_t type,
                           bk_blob_t *out);

//  upgrade_run.c: a run's record (BK_DB_RUNS), as bk_sched_upgrade_record.
int bk_sched_upgrade_run (bk_sched_why_t *self, const uint8_t *key, size_t key_size,
                          const aq_node_t *v1, aq_writer_t *w);

void bk_sched_upgrade_test (bool verbose);
void bk_sched_upgrade_run_test (bool verbose);

#endif
