/*  store.h - the broker's LMDB environment: named tables, one transaction

    The only module that includes <lmdb.h>. Values read are borrowed from the
    map and valid until the transaction ends: copy out before commit/abort.
    The layout (tables and record shapes) is versioned: changing it means
    bumping BK_STORE_VERSION and teaching upgrade.c the way from the old
    one. An environment of a layout older than BK_STORE_OLDEST or newer
    than BK_STORE_VERSION is refused.
*/
#ifndef BK_STORE_H
#define BK_STORE_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Layout 1: records were JSON documents packed as msgpack (string keys).
//  Layout 2: typed records, msgpack maps with small integer keys, key 0 the
//  record's own version (task.h, tasks.c, keys.h, tokens.h, sched/).
#define BK_STORE_VERSION 2 //  adding a table is compatible; reshaping records is not
#define BK_STORE_OLDEST  1 //  the oldest layout opened (bk_upgrade_run brings it up)

typedef enum {
    BK_DB_META,           //  "version", "seq" -> values
    BK_DB_TASKS,          //  id(16) -> packed task record
    BK_DB_READY,          //  255-priority(1) team(16) seq(8) -> id(16)
    BK_DB_DELAY,          //  due ms(8) kind(1) id(16) -> ""
    BK_DB_TEAM_TASKS,     //  team(16) seq(8) -> id(16)
    BK_DB_TEAM_STATUS,    //  team(16) status(1) seq(8) -> id(16)
    BK_DB_COUNTS,         //  team(16) status(1) -> uint64
    BK_DB_ATTEMPTS,       //  id(16) attempt(2) -> packed attempt record
    BK_DB_IDEM,           //  team(16) idempotency key -> id(16) created ms(8)
    BK_DB_KEYS,           //  key id -> packed key record
    BK_DB_TEAMS,          //  team(16) -> packed team record
    BK_DB_TEAM_NAMES,     //  name -> team(16)
    BK_DB_TOKENS,         //  team(16) token id -> packed token record (value sealed)
    BK_DB_SCHEDULES,      //  id(16) -> packed scheduled-task record
    BK_DB_TEAM_SCHEDULES, //  team(16) id(16) -> ""
    BK_DB_EVENT_NAMES,    //  team(16) event name 0 id(16) -> ""
    BK_DB_RUNS,           //  run id(16) -> packed run record
    BK_DB_SCHEDULE_RUNS,  //  schedule id(16) run id(16) -> ""
    BK_DB_RUN_KEYS,       //  team(16) 'd'|'c' key -> dedupe or concurrency record (schedules.h)
    BK_DB_COUNT
} bk_db_t;

typedef struct _bk_store_t bk_store_t;
typedef struct _bk_cursor_t bk_cursor_t;

typedef struct {
    const void *data; //  borrowed from the map until the transaction ends
    size_t size;
} bk_val_t;

//  Return codes besides 0.
#define BK_NOTFOUND 1   //  get/seek found nothing
#define BK_EFULL    -28 //  the map could not grow (disk full)
#define BK_ESTORE   -1  //  any other storage failure (logged by the caller)

//  Opens (creating if needed) the environment in dir, holding an exclusive
//  flock on dir while open, and replays the redo log (dir/redo.log) into it.
//  map_size is the initial map size; it grows on demand. nosync trades
//  durability for speed (no log). A new environment gets layout
//  BK_STORE_VERSION; an existing one may be of any layout from
//  BK_STORE_OLDEST (see bk_store_layout). Returns NULL and fills err on
//  failure, including a directory in use, a layout this build does not
//  open ("cannot open store 'DIR': layout version N, this build needs M")
//  and a log that does not follow the store.
bk_store_t *bk_store_open (const char *dir, int64_t map_size, bool nosync, char *err,
                           size_t err_size);
//  Checkpoints (a clean stop leaves nothing to replay) and closes.
void bk_store_destroy (bk_store_t **self_p);

//  Room one LMDB write transaction may always use: the broker bounds the
//  bytes it takes in per turn well below this (S_TURN_BYTES in broker.c),
//  and the transaction behind the redo log spans at most
//  BK_STORE_CHECKPOINT_BYTES of log plus one turn.
#define BK_STORE_HEADROOM (64u << 20)

//  One transaction at a time per store object. A write transaction that
//  starts a new LMDB transaction (the first after a checkpoint) first grows
//  the map (doubling) until a quarter of it, and at least
//  BK_STORE_HEADROOM, is free, so MDB_MAP_FULL does not happen short of a
//  full disk. 0 or BK_ESTORE.
int bk_store_begin (bk_store_t *self, bool write);
//  Commits: on disk when it returns (unless nosync), through the redo log
//  (see store.c). 0, BK_EFULL, or BK_ESTORE; the transaction is over either
//  way (a failed commit loses its own changes only).
int bk_store_commit (bk_store_t *self);
void bk_store_abort (bk_store_t *self);
//  Checkpoints the LMDB transaction behind the redo log when one is due:
//  ms milliseconds after the last checkpoint, or after bytes of log,
//  whichever comes first, or when the map must grow. Between transactions,
//  after the commit's answers are out: a checkpoint (LMDB's synced commit)
//  takes a millisecond or two, and no answer waits for it.
void bk_store_settle (bk_store_t *self);
//  The ms and bytes a store starts with, and how to change them.
#define BK_STORE_CHECKPOINT_MS    25
#define BK_STORE_CHECKPOINT_BYTES (1u << 20)
void bk_store_set_checkpoint (bk_store_t *self, int64_t ms, size_t bytes);
//  Commits the last open replayed from the redo log (a crash had left them
//  out of LMDB's last checkpoint).
uint64_t bk_store_replayed (bk_store_t *self);

//  0 (found, *val set), BK_NOTFOUND, or an error.
int bk_store_get (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, bk_val_t *val);
//  0 or an error (BK_EFULL when the map is full: abort and retry).
int bk_store_put (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, const void *data,
                  size_t size);
//  0 (deleted or absent) or an error.
int bk_store_del (bk_store_t *self, bk_db_t db, const void *key, size_t key_size);

//  Puts what w holds (a record its owner encoded); BK_ESTORE when w ran
//  out of memory. 0 or an error.
int bk_store_put_writer (bk_store_t *self, bk_db_t db, const void *key, size_t key_size,
                         aq_writer_t *w);

//  uint64 counter stored little-endian under key, plus delta (floored at 0).
//  Changes stay in memory until commit, so many changes to one counter in a
//  transaction cost one read and one write; bk_store_counter sees them.
int bk_store_add (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, int64_t delta);
uint64_t bk_store_counter (bk_store_t *self, bk_db_t db, const void *key, size_t key_size);

//  Cursors live inside the current transaction; close before it ends.
bk_cursor_t *bk_cursor_open (bk_store_t *self, bk_db_t db);
void bk_cursor_close (bk_cursor_t **self_p);
//  First key >= key (key NULL: first key). 0 or BK_NOTFOUND.
int bk_cursor_seek (bk_cursor_t *self, const void *key, size_t key_size, bk_val_t *k, bk_val_t *v);
//  Last key of the table, next and previous. 0 or BK_NOTFOUND.
int bk_cursor_last (bk_cursor_t *self, bk_val_t *k, bk_val_t *v);
int bk_cursor_next (bk_cursor_t *self, bk_val_t *k, bk_val_t *v);
int bk_cursor_prev (bk_cursor_t *self, bk_val_t *k, bk_val_t *v);
//  Deletes the entry under the cursor.
int bk_cursor_del (bk_cursor_t *self);

//  Bytes used by the data file, and the current map size.
int64_t bk_store_used_bytes (bk_store_t *self);
int64_t bk_store_map_bytes (bk_store_t *self);
//  Drops the process's mapping of the store's pages (they stay in the page
//  cache and come back on access), so the broker's resident memory is its
//  own plus the store's hot pages, not every page it ever read. Call
//  outside a transaction.
void bk_store_release_pages (bk_store_t *self);
//  Clears reader slots of dead processes; returns how many.
int bk_store_reader_check (bk_store_t *self);

//  Selftests: a new empty directory under /tmp, its path in dir; and its
//  removal with everything in it.
#define BK_STORE_TEST_DIR 64
void bk_store_test_dir (char dir[BK_STORE_TEST_DIR]);
void bk_store_test_remove (const char *dir);
//  A fresh store (nosync, 1 MiB map) in a new test directory, with a write
//  transaction begun; and its end: abort, close, remove the directory.
bk_store_t *bk_store_test_new (char dir[BK_STORE_TEST_DIR]);
void bk_store_test_destroy (bk_store_t **self_p, const char *dir);

//  The layout version of the committed data (BK_STORE_OLDEST to
//  BK_STORE_VERSION): what the store was opened with, or the last
//  bk_store_set_layout that committed.
int bk_store_layout (bk_store_t *self);
//  Sets the layout version in the current write transaction; it counts
//  once the transaction commits (an abort or a failed commit forgets it).
//  0 or a store error.
int bk_store_set_layout (bk_store_t *self, int layout);

//  Fault seam: replaces the commit (tests simulate a full disk). NULL restores.
void bk_store_set_commit_hook (bk_store_t *self, int (*hook) (void));

void bk_store_test (bool verbose);

#endif
