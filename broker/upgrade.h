/*  upgrade.h - the store from layout 1 (JSON records) to layout 2 (typed records)

    Layout 1 (the first release) kept tasks, attempts, teams, keys,
    tokens, scheduled tasks, runs and concurrency records as JSON documents
    packed as msgpack maps with string keys, and a dedupe key's time as 8
    raw bytes. Layout 2 keeps typed records: msgpack maps with small
    integer keys, key 0 the record's version (task.h, tasks.c, keys.h,
    tokens.h, sched/). Indexes, counters, the delay queue, idempotency keys
    and meta are binary in both and do not change.

    bk_upgrade_run converts a layout-1 store in place, in batches of
    BK_UPGRADE_BATCH records (or BK_UPGRADE_BATCH_BYTES written) per
    transaction so the redo log and the map stay bounded. Each record says
    itself whether it is converted yet (string keys: layout 1; integer
    keys: layout 2; a dedupe time of 8 raw bytes: layout 1), so a run
    stopped anywhere (a crash, a full disk) is
    finished by the next one; the layout is set to 2 in the last
    transaction, once every record is converted.

        if (bk_upgrade_run (store, dir, 0, NULL, err, sizeof err) != 0)
            ...log err, refuse to start...
*/
#ifndef BK_UPGRADE_H
#define BK_UPGRADE_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_UPGRADE_BATCH       1000      //  records per transaction
#define BK_UPGRADE_BATCH_BYTES (8 << 20) //  or bytes written per transaction

//  What a run found, by kind: records in layout 2 at the end (converted
//  by this run or an earlier one), and those left in layout 1.
typedef struct {
    uint64_t tasks;     //  BK_DB_TASKS
    uint64_t attempts;  //  BK_DB_ATTEMPTS
    uint64_t teams;     //  BK_DB_TEAMS
    uint64_t keys;      //  BK_DB_KEYS
    uint64_t tokens;    //  BK_DB_TOKENS
    uint64_t schedules; //  BK_DB_SCHEDULES
    uint64_t runs;      //  BK_DB_RUNS
    uint64_t run_keys;  //  BK_DB_RUN_KEYS concurrency and dedupe records
    uint64_t converted; //  records this run converted
    uint64_t left;      //  records this build cannot convert (upgrade_sched.h)
    int64_t ms;         //  how long the run took
} bk_upgrade_stats_t;

//  Brings store (opened on dir, no transaction open) to layout 2 when it
//  is at layout 1; does nothing at layout 2. batch is the records per
//  transaction (0: BK_UPGRADE_BATCH). Logs one line when done:
//    upgraded store 'DIR' from layout 1 to 2: N tasks, N attempts, N teams,
//    N keys, N tokens, N schedules, N runs in T ms
//  or, when records are left (this build cannot convert them), a warning
//  that the store stays at layout 1. Fills *stats when not NULL. Returns
//  0, or -1 with the operator's message in err: a record it cannot read
//  (its table and key named; nothing is dropped: the broker must not
//  start), or a store failure (what was committed stays; a new run goes on
//  from there).
int bk_upgrade_run (bk_store_t *store, const char *dir, int batch, bk_upgrade_stats_t *stats,
                    char *err, size_t err_size);

void bk_upgrade_test (bool verbose);

#endif
