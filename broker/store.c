/*  store.c - the broker's LMDB environment: named tables, one transaction

    The only module that includes <lmdb.h> (store_test.c holds its
    selftest). Full sync is the default: a commit
    is on disk when it returns. It gets there through the redo log (redo.h):
    the LMDB write transaction stays open across commits, each commit appends
    its changes (puts and deletes, recorded as they are made) to the log and
    syncs it, and a checkpoint - a synced LMDB commit, which bk_store_settle
    takes between turns every BK_STORE_CHECKPOINT_MS or
    BK_STORE_CHECKPOINT_BYTES of log - lets the log start over. An abort, or a
    failure, drops the LMDB transaction; the next begin replays the log into
    a fresh one, as opening the store does after a crash. With nosync there
    is no log and each commit is an LMDB commit without fsync.

    The map grows before a write transaction until BK_STORE_HEADROOM (or a
    quarter) is free, and doubles again after a MDB_MAP_FULL, so a large
    backlog never fails for lack of map space; only a full disk does.
*/
#include "store.h"
#include "aq_time.h"
#include "redo.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *s_db_names[BK_DB_COUNT] = {
    "meta",        "tasks",      "ready",         "delay",     "team_tasks",
    "team_status", "counts",     "attempts",      "idem",      "keys",
    "teams",       "team_names", "tokens",        "schedules", "team_schedules",
    "event_names", "runs",       "schedule_runs", "run_keys"};

#define S_DELTA_KEY 32   //  longest counter key kept in memory
#define S_DELTAS    1024 //  distinct counters changed in one transaction

#define S_OP_HEADER 8 //  a logged change: op, table, key and value sizes

typedef struct {
    bk_db_t db;               //  table of the counter
    uint8_t key[S_DELTA_KEY]; //  its key
    size_t key_size;          //  key length, 0 for a free slot
    int64_t delta;            //  change not yet written
} s_delta_t;

struct _bk_store_t {
    MDB_env *env;              //  the environment
    MDB_dbi dbi[BK_DB_COUNT];  //  open tables
    MDB_txn *txn;              //  the LMDB transaction, or NULL
    bool held;                 //  txn is the write transaction kept across commits
    bool turn;                 //  begun and not yet committed or aborted
    bool write;                //  the turn may write
    int failed;                //  a change of this turn failed (its code), 0
    bool grow;                 //  grow the map before the next write
    int dir_fd;                //  the data directory, flock'ed: one broker per store
    bk_redo_t *redo;           //  the redo log, NULL with nosync
    uint8_t *ops;              //  this turn's changes, as a log record
    size_t nops;               //  bytes used
    size_t ops_size;           //  bytes allocated
    uint64_t logged;           //  sequence number of the log's last record
    uint64_t checkpointed;     //  the last one in LMDB (meta "redo")
    int64_t checkpointed_at;   //  monotonic ms of the last checkpoint
    uint64_t replayed;         //  records replayed when opened
    int64_t checkpoint_every;  //  ms between checkpoints
    size_t checkpoint_bytes;   //  log bytes between checkpoints
    int (*commit_hook) (void); //  fault seam, NULL in production
    uintptr_t map_start;       //  the map's address range, once found
    uintptr_t map_end;         //  (see bk_store_release_pages)
    s_delta_t *deltas;         //  counter changes of this transaction
    size_t ndeltas;            //  used entries
    int layout;                //  the layout version of the committed data
    int layout_set;            //  the one this turn sets (bk_store_set_layout), 0
};

struct _bk_cursor_t {
    MDB_cursor *cursor; //  owned, inside the store's transaction
    bk_store_t *store;  //  its store (bk_cursor_del logs the key)
    bk_db_t db;         //  its table
};

static int s_code (int rc) {
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return BK_NOTFOUND;
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        return BK_EFULL;
    return BK_ESTORE;
}

//  Doubles the map until the used part plus the headroom one transaction
//  may need fits: a quarter of the map, and at least BK_STORE_HEADROOM.
static int s_grow (bk_store_t *self, bool force) {
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    size_t used = (size_t) bk_store_used_bytes (self), size = info.me_mapsize;
    if (force)
        size *= 2;
    while (used + (size / 4 > BK_STORE_HEADROOM ? size / 4 : BK_STORE_HEADROOM) > size)
        size *= 2;
    self->grow = false;
    if (size == info.me_mapsize)
        return 0;
    return mdb_env_set_mapsize (self->env, size) == 0 ? 0 : BK_ESTORE;
}

//  Drops the LMDB transaction: the store is back at its last checkpoint
//  (the next write begin replays the log).
static void s_drop (bk_store_t *self) {
    if (self->txn)
        mdb_txn_abort (self->txn);
    self->txn = NULL;
    self->held = false;
}

//  Applies one log record (a turn's changes) to the LMDB transaction.
static int s_apply (void *arg, const uint8_t *data, size_t size) {
    bk_store_t *self = arg;
    size_t at = 0;
    while (at + S_OP_HEADER <= size) {
        uint16_t key_size;
        uint32_t value_size;
        memcpy (&key_size, data + at + 2, 2);
        memcpy (&value_size, data + at + 4, 4);
        uint8_t op = data[at], db = data[at + 1];
        if (db >= BK_DB_COUNT || at + S_OP_HEADER + key_size + value_size > size)
            return BK_ESTORE;
        MDB_val k = {key_size, (void *) (data + at + S_OP_HEADER)};
        MDB_val v = {value_size, (void *) (data + at + S_OP_HEADER + key_size)};
        int rc = op == 'P'   ? mdb_put (self->txn, self->dbi[db], &k, &v, 0)
                 : op == 'D' ? mdb_del (self->txn, self->dbi[db], &k, NULL)
                             : EINVAL;
        if (rc == MDB_MAP_FULL)
            self->grow = true;
        if (rc != 0 && rc != MDB_NOTFOUND)
            return s_code (rc);
        at += S_OP_HEADER + key_size + value_size;
    }
    return at == size ? 0 : BK_ESTORE;
}

//  Begins the LMDB write transaction and replays the log records it lacks.
static int s_begin_write (bk_store_t *self) {
    s_grow (self, self->grow);
    int rc = mdb_txn_begin (self->env, NULL, 0, &self->txn);
    if (rc != 0) {
        self->txn = NULL;
        return s_code (rc);
    }
    self->held = self->redo != NULL;
    if (self->logged > self->checkpointed) {
        uint64_t last;
        rc = bk_redo_replay (self->redo, self->checkpointed, s_apply, self, &last);
        if (rc == 0 && last != self->logged)
            rc = BK_ESTORE; //  the log lost records it had synced
        if (rc != 0) {
            s_drop (self);
            return rc == BK_EFULL ? BK_EFULL : BK_ESTORE;
        }
    }
    return 0;
}

//  Commits the LMDB transaction with a full sync, recording how much of the
//  log it holds; the log then starts over. On failure the transaction is
//  gone and the log keeps everything: the next begin replays it.
static int s_checkpoint (bk_store_t *self) {
    MDB_val key = {4, "redo"}, val = {sizeof self->logged, &self->logged};
    int rc = mdb_put (self->txn, self->dbi[BK_DB_META], &key, &val, 0);
    if (rc == 0)
        rc = mdb_txn_commit (self->txn);
    else
        mdb_txn_abort (self->txn);
    self->txn = NULL;
    self->held = false;
    if (rc == MDB_MAP_FULL)
        self->grow = true;
    if (rc != 0)
        return s_code (rc);
    self->checkpointed = self->logged;
    self->checkpointed_at = aq_time_mono_ms ();
    bk_redo_reset (self->redo);
    return 0;
}

//  Opens the redo log and brings LMDB up to its last record (also before
//  a nosync run, so that a later full-sync run finds no stale records).
static int s_open_redo (bk_store_t *self, const char *dir, char *err, size_t err_size) {
    char path[4200];
    snprintf (path, sizeof path, "%s/redo.log", dir);
    self->redo = bk_redo_open (path, err, err_size);
    if (!self->redo)
        return -1;
    MDB_txn *txn;
    MDB_val key = {4, "redo"}, val;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0 && mdb_get (txn, self->dbi[BK_DB_META], &key, &val) == 0 &&
        val.mv_size == sizeof self->checkpointed)
        memcpy (&self->checkpointed, val.mv_data, sizeof self->checkpointed);
    if (rc == 0)
        mdb_txn_abort (txn);
    self->logged = self->checkpointed;
    self->checkpointed_at = aq_time_mono_ms ();
    uint64_t last = self->checkpointed;
    int replay = -2;
    if (rc == 0 && (rc = s_begin_write (self)) == 0)
        replay = bk_redo_replay (self->redo, self->checkpointed, s_apply, self, &last);
    if (replay == 0 && last > self->checkpointed) {
        self->replayed = last - self->checkpointed;
        self->logged = last;
        rc = s_checkpoint (self);
    }
    s_drop (self);
    bk_redo_reset (self->redo);
    if (rc != 0 || replay != 0)
        snprintf (err, err_size, "cannot replay redo log '%s': %s", path,
                  replay == -1 ? "its records do not follow the store's last checkpoint"
                               : "storage error");
    return rc == 0 && replay == 0 ? 0 : -1;
}

//  The layout a "version" value names, into self->layout: 0, or -1 with
//  err set when this build cannot open it (not a number, or outside
//  BK_STORE_OLDEST..BK_STORE_VERSION).
static int s_layout_check (bk_store_t *self, const MDB_val *val, const char *dir, char *err,
                           size_t err_size) {
    char text[8] = "";
    int layout = 0;
    if (val->mv_size > 0 && val->mv_size < sizeof text) {
        memcpy (text, val->mv_data, val->mv_size);
        text[val->mv_size] = '\0';
        if (strspn (text, "0123456789") == val->mv_size)
            layout = atoi (text);
    }
    if (layout < BK_STORE_OLDEST || layout > BK_STORE_VERSION) {
        snprintf (err, err_size, "cannot open store '%s': layout version %.*s, this build needs %d",
                  dir, (int) (val->mv_size < 8 ? val->mv_size : 8), (char *) val->mv_data,
                  BK_STORE_VERSION);
        return -1;
    }
    self->layout = layout;
    return 0;
}

//  Reads the layout again once the redo log is replayed (a layout set by
//  a commit the last checkpoint did not hold is in the log).
static int s_layout_read (bk_store_t *self, const char *dir, char *err, size_t err_size) {
    MDB_txn *txn;
    MDB_val key = {7, "version"}, val;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = mdb_get (txn, self->dbi[BK_DB_META], &key, &val);
        if (rc == 0 && s_layout_check (self, &val, dir, err, err_size) != 0)
            rc = -1;
        else if (rc != 0)
            snprintf (err, err_size, "cannot open store '%s': %s", dir, mdb_strerror (rc));
        mdb_txn_abort (txn);
    } else
        snprintf (err, err_size, "cannot open store '%s': %s", dir, mdb_strerror (rc));
    return rc == 0 ? 0 : -1;
}

bk_store_t *bk_store_open (const char *dir, int64_t map_size, bool nosync, char *err,
                           size_t err_size) {
    bk_store_t *self = calloc (1, sizeof *self);
    assert (self);
    self->dir_fd = -1;
    bk_store_set_checkpoint (self, BK_STORE_CHECKPOINT_MS, BK_STORE_CHECKPOINT_BYTES);
    int rc = mkdir (dir, 0700);
    if (rc != 0 && errno != EEXIST) {
        snprintf (err, err_size, "cannot create data directory '%s': %s", dir, strerror (errno));
        free (self);
        return NULL;
    }
    self->dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0 || flock (self->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            snprintf (err, err_size, "data directory '%s' is in use by another broker", dir);
        else
            snprintf (err, err_size, "cannot lock data directory '%s': %s", dir, strerror (errno));
        bk_store_destroy (&self);
        return NULL;
    }
    rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, BK_DB_COUNT);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 126);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, (size_t) (map_size > 0 ? map_size : 1LL << 30));
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS | (nosync ? MDB_NOSYNC : 0), 0600);
    if (rc != 0) {
        snprintf (err, err_size, "cannot open store '%s': %s", dir, mdb_strerror (rc));
        bk_store_destroy (&self);
        return NULL;
    }
    fsync (self->dir_fd); //  a new data.mdb's name is on disk before its commits
    int dead = 0;
    mdb_reader_check (self->env, &dead);

    MDB_txn *txn;
    rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    for (int i = 0; rc == 0 && i < BK_DB_COUNT; i++)
        rc = mdb_dbi_open (txn, s_db_names[i], MDB_CREATE, &self->dbi[i]);
    if (rc == 0) {
        MDB_val key = {7, "version"}, val;
        char want[16];
        int n = snprintf (want, sizeof want, "%d", BK_STORE_VERSION);
        rc = mdb_get (txn, self->dbi[BK_DB_META], &key, &val);
        if (rc == MDB_NOTFOUND) { //  a new store
            val.mv_size = (size_t) n, val.mv_data = want;
            rc = mdb_put (txn, self->dbi[BK_DB_META], &key, &val, 0);
        } else if (rc == 0 && s_layout_check (self, &val, dir, err, err_size) != 0) {
            mdb_txn_abort (txn);
            bk_store_destroy (&self);
            return NULL;
        }
    }
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else
        mdb_txn_abort (txn);
    if (rc != 0) {
        snprintf (err, err_size, "cannot open store '%s': %s", dir, mdb_strerror (rc));
        bk_store_destroy (&self);
    } else if (s_open_redo (self, dir, err, err_size) != 0 ||
               s_layout_read (self, dir, err, err_size) != 0)
        bk_store_destroy (&self);
    else if (nosync) //  replayed what a full-sync run left; no log from now on
        bk_redo_destroy (&self->redo);
    return self;
}

void bk_store_destroy (bk_store_t **self_p) {
    assert (self_p);
    bk_store_t *self = *self_p;
    if (!self)
        return;
    if (self->held && !self->turn && self->logged > self->checkpointed)
        s_checkpoint (self); //  a clean stop leaves nothing to replay
    s_drop (self);
    if (self->env)
        mdb_env_close (self->env);
    bk_redo_destroy (&self->redo);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    free (self->deltas);
    free (self->ops);
    free (self);
    *self_p = NULL;
}

int bk_store_begin (bk_store_t *self, bool write) {
    assert (!self->turn);
    int rc = 0;
    if (!self->txn && (write || self->logged > self->checkpointed))
        rc = s_begin_write (self);
    else if (!self->txn) {
        rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &self->txn);
        if (rc == MDB_MAP_RESIZED) { //  another process grew the map
            mdb_env_set_mapsize (self->env, 0);
            rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &self->txn);
        }
        if (rc != 0)
            self->txn = NULL;
    }
    if (rc != 0)
        return BK_ESTORE;
    self->turn = true;
    self->write = write;
    self->failed = 0;
    self->nops = 0;
    return 0;
}

static int s_put_counter (bk_store_t *self, bk_db_t db, const void *key, size_t key_size,
                          int64_t delta);

//  Writes the counter changes kept in memory: many changes to one counter
//  in a transaction cost one read and one write.
static int s_flush_deltas (bk_store_t *self) {
    int rc = 0;
    for (size_t i = 0; i < self->ndeltas && rc == 0; i++) {
        s_delta_t *d = &self->deltas[i];
        if (d->delta)
            rc = s_put_counter (self, d->db, d->key, d->key_size, d->delta);
    }
    self->ndeltas = 0;
    return rc;
}

int bk_store_commit (bk_store_t *self) {
    assert (self->turn);
    int rc = s_flush_deltas (self);
    self->turn = false;
    int layout = self->layout_set;
    self->layout_set = 0;
    if (rc == 0 && self->failed)
        rc = self->failed;
    if (rc == 0 && self->commit_hook && (!self->held || self->nops))
        rc = s_code (self->commit_hook ());
    if (!self->held) { //  nosync, or a read: an LMDB commit
        if (rc == 0)
            rc = s_code (mdb_txn_commit (self->txn));
        else
            mdb_txn_abort (self->txn);
        self->txn = NULL;
        if (rc == BK_EFULL)
            self->grow = true;
        if (rc == 0 && layout)
            self->layout = layout;
        return rc;
    }
    if (rc == 0 && self->nops) {
        rc = bk_redo_append (self->redo, self->logged + 1, self->ops, self->nops);
        rc = rc == 0 ? 0 : s_code (-rc);
        if (rc == 0)
            self->logged++;
    }
    if (rc != 0)
        s_drop (self);
    else if (layout)
        self->layout = layout;
    return rc; //  0: on disk now
}

void bk_store_settle (bk_store_t *self) {
    assert (!self->turn);
    //  A failed checkpoint leaves the commits in the log (the next begin
    //  replays them) and is tried again after the next commit.
    if (self->held && self->logged > self->checkpointed &&
        (bk_redo_size (self->redo) >= self->checkpoint_bytes || self->grow ||
         aq_time_mono_ms () - self->checkpointed_at >= self->checkpoint_every))
        s_checkpoint (self);
}

void bk_store_set_checkpoint (bk_store_t *self, int64_t ms, size_t bytes) {
    self->checkpoint_every = ms;
    self->checkpoint_bytes = bytes;
}

uint64_t bk_store_replayed (bk_store_t *self) {
    return self->replayed;
}

void bk_store_abort (bk_store_t *self) {
    self->ndeltas = 0;
    self->layout_set = 0;
    bool changed = self->nops || self->failed;
    self->turn = false;
    if (!self->held || changed)
        s_drop (self); //  a held transaction goes back to the checkpoint: replay
}

int bk_store_get (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, bk_val_t *val) {
    assert (self->turn);
    MDB_val k = {key_size, (void *) key}, v;
    int rc = mdb_get (self->txn, self->dbi[db], &k, &v);
    if (rc == 0)
        val->data = v.mv_data, val->size = v.mv_size;
    return s_code (rc);
}

//  Records a change in this turn's log record.
static void s_log (bk_store_t *self, uint8_t op, bk_db_t db, const void *key, size_t key_size,
                   const void *data, size_t size) {
    if (!self->held)
        return;
    size_t need = self->nops + S_OP_HEADER + key_size + size;
    if (need > self->ops_size) {
        size_t grown = self->ops_size ? self->ops_size : 64 << 10;
        while (grown < need)
            grown *= 2;
        self->ops = realloc (self->ops, grown);
        assert (self->ops);
        self->ops_size = grown;
    }
    uint8_t *at = self->ops + self->nops;
    uint16_t key16 = (uint16_t) key_size;
    uint32_t size32 = (uint32_t) size;
    at[0] = op, at[1] = (uint8_t) db;
    memcpy (at + 2, &key16, 2);
    memcpy (at + 4, &size32, 4);
    memcpy (at + S_OP_HEADER, key, key_size);
    if (size)
        memcpy (at + S_OP_HEADER + key_size, data, size);
    self->nops = need;
}

//  A failed change poisons the turn: LMDB may have half made it.
static int s_changed (bk_store_t *self, int rc) {
    if (rc == MDB_MAP_FULL)
        self->grow = true;
    if (rc != 0 && !self->failed)
        self->failed = s_code (rc);
    return s_code (rc);
}

int bk_store_put (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, const void *data,
                  size_t size) {
    assert (self->turn && self->write);
    MDB_val k = {key_size, (void *) key}, v = {size, (void *) data};
    int rc = mdb_put (self->txn, self->dbi[db], &k, &v, 0);
    if (rc == 0)
        s_log (self, 'P', db, key, key_size, data, size);
    return s_changed (self, rc);
}

int bk_store_del (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    assert (self->turn && self->write);
    MDB_val k = {key_size, (void *) key};
    int rc = mdb_del (self->txn, self->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0)
        s_log (self, 'D', db, key, key_size, NULL, 0);
    return s_changed (self, rc);
}

static uint64_t s_stored_counter (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    bk_val_t val;
    uint64_t count = 0;
    if (bk_store_get (self, db, key, key_size, &val) == 0 && val.size == sizeof count)
        memcpy (&count, val.data, sizeof count);
    return count;
}

static int s_put_counter (bk_store_t *self, bk_db_t db, const void *key, size_t key_size,
                          int64_t delta) {
    int64_t count = (int64_t) s_stored_counter (self, db, key, key_size) + delta;
    uint64_t value = count < 0 ? 0 : (uint64_t) count;
    return bk_store_put (self, db, key, key_size, &value, sizeof value);
}

static s_delta_t *s_delta (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    for (size_t i = 0; i < self->ndeltas; i++) {
        s_delta_t *d = &self->deltas[i];
        if (d->db == db && d->key_size == key_size && memcmp (d->key, key, key_size) == 0)
            return d;
    }
    return NULL;
}

uint64_t bk_store_counter (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    int64_t count = (int64_t) s_stored_counter (self, db, key, key_size);
    s_delta_t *d = s_delta (self, db, key, key_size);
    if (d)
        count += d->delta;
    return count < 0 ? 0 : (uint64_t) count;
}

int bk_store_put_writer (bk_store_t *self, bk_db_t db, const void *key, size_t key_size,
                         aq_writer_t *w) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    return data ? bk_store_put (self, db, key, key_size, data, size) : BK_ESTORE;
}

int bk_store_add (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, int64_t delta) {
    assert (self->turn && self->write);
    s_delta_t *d = s_delta (self, db, key, key_size);
    if (!d && (key_size > S_DELTA_KEY || self->ndeltas == S_DELTAS))
        return s_put_counter (self, db, key, key_size, delta);
    if (!d) {
        if (!self->deltas) {
            self->deltas = calloc (S_DELTAS, sizeof *self->deltas);
            assert (self->deltas);
        }
        d = &self->deltas[self->ndeltas++];
        d->db = db;
        memcpy (d->key, key, key_size);
        d->key_size = key_size;
        d->delta = 0;
    }
    d->delta += delta;
    return 0;
}

bk_cursor_t *bk_cursor_open (bk_store_t *self, bk_db_t db) {
    assert (self->turn);
    bk_cursor_t *cursor = calloc (1, sizeof *cursor);
    assert (cursor);
    cursor->store = self;
    cursor->db = db;
    if (mdb_cursor_open (self->txn, self->dbi[db], &cursor->cursor) != 0) {
        free (cursor);
        return NULL;
    }
    return cursor;
}

void bk_cursor_close (bk_cursor_t **self_p) {
    if (*self_p) {
        mdb_cursor_close ((*self_p)->cursor);
        free (*self_p);
        *self_p = NULL;
    }
}

static int s_cursor_get (bk_cursor_t *self, MDB_val *k, MDB_cursor_op op, bk_val_t *key,
                         bk_val_t *val) {
    MDB_val v;
    int rc = mdb_cursor_get (self->cursor, k, &v, op);
    if (rc == 0) {
        if (key)
            key->data = k->mv_data, key->size = k->mv_size;
        if (val)
            val->data = v.mv_data, val->size = v.mv_size;
    }
    return s_code (rc);
}

int bk_cursor_seek (bk_cursor_t *self, const void *key, size_t key_size, bk_val_t *k, bk_val_t *v) {
    MDB_val mk = {key_size, (void *) key};
    return s_cursor_get (self, &mk, key ? MDB_SET_RANGE : MDB_FIRST, k, v);
}

int bk_cursor_last (bk_cursor_t *self, bk_val_t *k, bk_val_t *v) {
    MDB_val mk;
    return s_cursor_get (self, &mk, MDB_LAST, k, v);
}

int bk_cursor_next (bk_cursor_t *self, bk_val_t *k, bk_val_t *v) {
    MDB_val mk;
    return s_cursor_get (self, &mk, MDB_NEXT, k, v);
}

int bk_cursor_prev (bk_cursor_t *self, bk_val_t *k, bk_val_t *v) {
    MDB_val mk;
    return s_cursor_get (self, &mk, MDB_PREV, k, v);
}

int bk_cursor_del (bk_cursor_t *self) {
    MDB_val k, v;
    int rc = mdb_cursor_get (self->cursor, &k, &v, MDB_GET_CURRENT);
    if (rc == 0) //  before the delete moves the key; a failed delete fails the commit
        s_log (self->store, 'D', self->db, k.mv_data, k.mv_size, NULL, 0);
    if (rc == 0)
        rc = mdb_cursor_del (self->cursor, 0);
    return s_changed (self->store, rc);
}

int64_t bk_store_used_bytes (bk_store_t *self) {
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info (self->env, &info);
    mdb_env_stat (self->env, &stat);
    return (int64_t) (info.me_last_pgno + 1) * stat.ms_psize;
}

int64_t bk_store_map_bytes (bk_store_t *self) {
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    return (int64_t) info.me_mapsize;
}

//  The map's address range, from /proc/self/maps (LMDB reports it only for
//  MDB_FIXEDMAP): the mapping that contains a pointer into the map.
static bool s_find_map (uintptr_t inside, uintptr_t *start, uintptr_t *end) {
    FILE *maps = fopen ("/proc/self/maps", "r");
    if (!maps)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets (line, sizeof line, maps)) {
        unsigned long lo, hi;
        if (sscanf (line, "%lx-%lx", &lo, &hi) == 2 && inside >= lo && inside < hi)
            *start = lo, *end = hi, found = true;
    }
    fclose (maps);
    return found;
}

void bk_store_release_pages (bk_store_t *self) {
    assert (!self->turn);
    //  A read transaction of its own: a value of the held write transaction
    //  may live in a dirty page on the heap, not in the map.
    MDB_txn *txn;
    if (bk_store_used_bytes (self) < (16 << 20) ||
        mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    MDB_val key = {7, "version"}, val;
    uintptr_t inside = 0;
    if (mdb_get (txn, self->dbi[BK_DB_META], &key, &val) == 0)
        inside = (uintptr_t) val.mv_data;
    mdb_txn_abort (txn);
    if (inside && !(inside >= self->map_start && inside < self->map_end) &&
        !s_find_map (inside, &self->map_start, &self->map_end))
        return;
    //  The map is read-only (no MDB_WRITEMAP): dropping pages loses nothing.
    if (self->map_end > self->map_start)
        madvise ((void *) self->map_start, self->map_end - self->map_start, MADV_DONTNEED);
}

int bk_store_reader_check (bk_store_t *self) {
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    return dead;
}

int bk_store_layout (bk_store_t *self) {
    return self->layout;
}

int bk_store_set_layout (bk_store_t *self, int layout) {
    assert (self->turn && self->write);
    assert (layout >= BK_STORE_OLDEST && layout <= BK_STORE_VERSION);
    char text[16];
    int n = snprintf (text, sizeof text, "%d", layout);
    int rc = bk_store_put (self, BK_DB_META, "version", 7, text, (size_t) n);
    if (rc == 0)
        self->layout_set = layout;
    return rc;
}

void bk_store_set_commit_hook (bk_store_t *self, int (*hook) (void)) {
    self->commit_hook = hook;
}
