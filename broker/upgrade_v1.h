/*  upgrade_v1.h - layout-1 records to layout-2 records, one converter per table

    The field by field half of the upgrade (upgrade.h runs it over the
    store). A layout-1 record is a JSON document as the first release built
    it (broker/old/: public fields, bookkeeping with a leading underscore,
    times as integer ms) packed as a msgpack map with string keys. Each
    converter reads it into the layout-2 struct of its table (bk_task_t,
    bk_attempt_t, bk_team_t, bk_key_t, bk_token_t) and stores that with
    its own encoder under the same key; the scheduler's tables go to
    bk_sched_upgrade_record (sched/upgrade_sched.h). upgrade_v1.c lists
    where every layout-1 field goes.

        bk_upgrade_v1_t v1 = {.store = store};
        aq_writer_init (&v1.w);
        int rc = bk_upgrade_v1_convert (&v1, BK_DB_TASKS, key, 16, &record);
        ...rc BK_UPGRADE_V1_BAD: v1.why says what is wrong...
        aq_writer_release (&v1.w);
*/
#ifndef BK_UPGRADE_V1_H
#define BK_UPGRADE_V1_H

#include "aq_msg.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  What bk_upgrade_v1_convert did.
#define BK_UPGRADE_V1_DONE  0  //  converted and put
#define BK_UPGRADE_V1_LEFT  1  //  this build cannot convert it: left as it is
#define BK_UPGRADE_V1_BAD   -1 //  the record is not what layout 1 wrote: why says how
#define BK_UPGRADE_V1_STORE -2 //  the put failed: store_rc

typedef struct {
    bk_store_t *store; //  borrowed, in a write transaction
    aq_writer_t w;     //  scratch for the record written (initialized by the caller)
    char why[256];     //  BK_UPGRADE_V1_BAD: what is wrong (names a field, never a value)
    int store_rc;      //  BK_UPGRADE_V1_STORE: the store's code
    size_t written;    //  bytes put so far (the caller resets it)
} bk_upgrade_v1_t;

//  Converts the layout-1 record v1 (a map with string keys) stored in db
//  under key (key_size bytes) and puts its layout-2 record under the same
//  key. db is one of BK_DB_TASKS, BK_DB_ATTEMPTS, BK_DB_TEAMS, BK_DB_KEYS,
//  BK_DB_TOKENS, BK_DB_SCHEDULES, BK_DB_RUNS, BK_DB_RUN_KEYS (a 'c'
//  record, or a 'd' one: its 8 raw bytes as a bin node, upgrade_sched.h).
//  v1 may borrow the store's map: it is read before the put.
int bk_upgrade_v1_convert (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                           const aq_node_t *v1);

//  ---- for the converters (upgrade_v1.c, upgrade_task.c) ----------------

//  Fills self->why (printf-like); returns BK_UPGRADE_V1_BAD.
int bk_upgrade_v1_bad (bk_upgrade_v1_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
//  "field '<prefix><name>' is malformed", and "unknown field '...'":
//  BK_UPGRADE_V1_BAD.
int bk_upgrade_v1_bad_field (bk_upgrade_v1_t *self, const char *prefix, const aq_node_t *name);
int bk_upgrade_v1_unknown (bk_upgrade_v1_t *self, const char *prefix, const aq_node_t *name);
//  Puts what self->w holds under key: BK_UPGRADE_V1_DONE or _STORE.
int bk_upgrade_v1_put (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size);
//  Layout-1 values into out; false when value is not of that kind.
bool bk_upgrade_v1_int (const aq_node_t *value, int64_t *out);     //  an integer
bool bk_upgrade_v1_count (const aq_node_t *value, int *out);       //  an integer in 0..INT_MAX
bool bk_upgrade_v1_bool (const aq_node_t *value, bool *out);       //  true or false
bool bk_upgrade_v1_uuid (const aq_node_t *value, uint8_t out[16]); //  UUID text

//  upgrade_task.c: a task's record (BK_DB_TASKS), an attempt's
//  (BK_DB_ATTEMPTS); as bk_upgrade_v1_convert.
int bk_upgrade_task_convert (bk_upgrade_v1_t *self, const uint8_t *key, size_t key_size,
                             const aq_node_t *v1);
int bk_upgrade_task_attempt (bk_upgrade_v1_t *self, const uint8_t *key, size_t key_size,
                             const aq_node_t *v1);

void bk_upgrade_v1_test (bool verbose);
void bk_upgrade_task_test (bool verbose);

#endif
