/*  store.c - the broker's LMDB environment: named tables, one transaction

    The only file that includes <lmdb.h>. Full sync is the default; the map
    grows before a write transaction until BK_STORE_HEADROOM (or a quarter)
    is free, and doubles again after a MDB_MAP_FULL, so a large backlog never
    fails for lack of map space; only a full disk does.
*/
#include "store.h"
#include "aq_proto.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *s_db_names[BK_DB_COUNT] = {
    "meta",        "tasks",      "ready",         "delay",     "team_tasks",
    "team_status", "counts",     "attempts",      "idem",      "keys",
    "teams",       "team_names", "tokens",        "schedules", "team_schedules",
    "event_names", "runs",       "schedule_runs", "run_keys"};

#define S_DELTA_KEY 32   //  longest counter key kept in memory
#define S_DELTAS    1024 //  distinct counters changed in one transaction

typedef struct {
    bk_db_t db;               //  table of the counter
    uint8_t key[S_DELTA_KEY]; //  its key
    size_t key_size;          //  key length, 0 for a free slot
    int64_t delta;            //  change not yet written
} s_delta_t;

struct _bk_store_t {
    MDB_env *env;              //  the environment
    MDB_dbi dbi[BK_DB_COUNT];  //  open tables
    MDB_txn *txn;              //  the current transaction, or NULL
    bool write;                //  is txn a write transaction
    bool grow;                 //  grow the map before the next write
    int (*commit_hook) (void); //  fault seam, NULL in production
    uintptr_t map_start;       //  the map's address range, once found
    uintptr_t map_end;         //  (see bk_store_release_pages)
    s_delta_t *deltas;         //  counter changes of this transaction
    size_t ndeltas;            //  used entries
};

struct _bk_cursor_t {
    MDB_cursor *cursor; //  owned, inside the store's transaction
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
    MDB_stat stat;
    mdb_env_info (self->env, &info);
    mdb_env_stat (self->env, &stat);
    size_t used = (info.me_last_pgno + 1) * stat.ms_psize, size = info.me_mapsize;
    if (force)
        size *= 2;
    while (used + (size / 4 > BK_STORE_HEADROOM ? size / 4 : BK_STORE_HEADROOM) > size)
        size *= 2;
    self->grow = false;
    if (size == info.me_mapsize)
        return 0;
    return mdb_env_set_mapsize (self->env, size) == 0 ? 0 : BK_ESTORE;
}

bk_store_t *bk_store_open (const char *dir, int64_t map_size, bool nosync, char *err,
                           size_t err_size) {
    bk_store_t *self = calloc (1, sizeof *self);
    assert (self);
    int rc = mkdir (dir, 0700);
    if (rc != 0 && errno != EEXIST) {
        snprintf (err, err_size, "cannot create data directory '%s': %s", dir, strerror (errno));
        free (self);
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
        if (rc == MDB_NOTFOUND) {
            val.mv_size = (size_t) n, val.mv_data = want;
            rc = mdb_put (txn, self->dbi[BK_DB_META], &key, &val, 0);
        } else if (rc == 0 && (val.mv_size != (size_t) n || memcmp (val.mv_data, want, n) != 0)) {
            snprintf (err, err_size,
                      "cannot open store '%s': layout version %.*s, this build needs %s", dir,
                      (int) (val.mv_size < 8 ? val.mv_size : 8), (char *) val.mv_data, want);
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
    }
    return self;
}

void bk_store_destroy (bk_store_t **self_p) {
    assert (self_p);
    bk_store_t *self = *self_p;
    if (!self)
        return;
    if (self->txn)
        mdb_txn_abort (self->txn);
    if (self->env)
        mdb_env_close (self->env);
    free (self->deltas);
    free (self);
    *self_p = NULL;
}

int bk_store_begin (bk_store_t *self, bool write) {
    assert (!self->txn);
    if (write)
        s_grow (self, self->grow);
    int rc = mdb_txn_begin (self->env, NULL, write ? 0 : MDB_RDONLY, &self->txn);
    if (rc == MDB_MAP_RESIZED) { //  another process grew the map
        mdb_env_set_mapsize (self->env, 0);
        rc = mdb_txn_begin (self->env, NULL, write ? 0 : MDB_RDONLY, &self->txn);
    }
    if (rc != 0) {
        self->txn = NULL;
        return BK_ESTORE;
    }
    self->write = write;
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
    assert (self->txn);
    int rc = s_flush_deltas (self);
    if (rc != 0) {
        mdb_txn_abort (self->txn);
        self->txn = NULL;
        return rc;
    }
    if (self->commit_hook && (rc = self->commit_hook ()) != 0) {
        mdb_txn_abort (self->txn);
        self->txn = NULL;
        return s_code (rc);
    }
    rc = mdb_txn_commit (self->txn);
    self->txn = NULL;
    if (rc == MDB_MAP_FULL)
        self->grow = true;
    return s_code (rc);
}

void bk_store_abort (bk_store_t *self) {
    self->ndeltas = 0;
    if (self->txn)
        mdb_txn_abort (self->txn);
    self->txn = NULL;
}

int bk_store_get (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, bk_val_t *val) {
    assert (self->txn);
    MDB_val k = {key_size, (void *) key}, v;
    int rc = mdb_get (self->txn, self->dbi[db], &k, &v);
    if (rc == 0)
        val->data = v.mv_data, val->size = v.mv_size;
    return s_code (rc);
}

int bk_store_put (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, const void *data,
                  size_t size) {
    assert (self->txn && self->write);
    MDB_val k = {key_size, (void *) key}, v = {size, (void *) data};
    int rc = mdb_put (self->txn, self->dbi[db], &k, &v, 0);
    if (rc == MDB_MAP_FULL)
        self->grow = true;
    return s_code (rc);
}

int bk_store_del (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    assert (self->txn && self->write);
    MDB_val k = {key_size, (void *) key};
    int rc = mdb_del (self->txn, self->dbi[db], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : s_code (rc);
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

json_t *bk_store_get_record (bk_store_t *self, bk_db_t db, const void *key, size_t key_size) {
    bk_val_t val;
    if (bk_store_get (self, db, key, key_size, &val) != 0)
        return NULL;
    return aq_proto_unpack (val.data, val.size);
}

int bk_store_put_record (bk_store_t *self, bk_db_t db, const void *key, size_t key_size,
                         const json_t *record) {
    size_t size;
    uint8_t *data = aq_proto_pack (record, &size);
    int rc = data ? bk_store_put (self, db, key, key_size, data, size) : BK_ESTORE;
    free (data);
    return rc;
}

int bk_store_add (bk_store_t *self, bk_db_t db, const void *key, size_t key_size, int64_t delta) {
    assert (self->txn && self->write);
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
    assert (self->txn);
    bk_cursor_t *cursor = calloc (1, sizeof *cursor);
    assert (cursor);
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
    return s_code (mdb_cursor_del (self->cursor, 0));
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
    assert (!self->txn);
    if (bk_store_used_bytes (self) < (16 << 20) || bk_store_begin (self, false) != 0)
        return;
    bk_val_t val;
    uintptr_t inside = 0;
    if (bk_store_get (self, BK_DB_META, "version", 7, &val) == 0)
        inside = (uintptr_t) val.data;
    bk_store_abort (self);
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

void bk_store_set_commit_hook (bk_store_t *self, int (*hook) (void)) {
    self->commit_hook = hook;
}

//  --------------------------------------------------------------------------

bk_store_t *bk_store_test_new (char dir[BK_STORE_TEST_DIR]) {
    char err[256];
    snprintf (dir, BK_STORE_TEST_DIR, "/tmp/aq-store-test-XXXXXX");
    assert (mkdtemp (dir));
    bk_store_t *store = bk_store_open (dir, 1 << 20, true, err, sizeof err);
    assert (store);
    assert (bk_store_begin (store, true) == 0);
    return store;
}

void bk_store_test_destroy (bk_store_t **self_p, const char *dir) {
    bk_store_abort (*self_p);
    bk_store_destroy (self_p);
    char cmd[BK_STORE_TEST_DIR + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert (system (cmd) == 0);
}

static int s_disk_full (void) {
    return ENOSPC;
}

void bk_store_test (bool verbose) {
    char dir[] = "/tmp/aq-store-test-XXXXXX", err[256];
    assert (mkdtemp (dir));
    bk_store_t *store = bk_store_open (dir, 1 << 20, false, err, sizeof err);
    assert (store);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_put (store, BK_DB_TASKS, "b", 1, "two", 3) == 0);
    assert (bk_store_put (store, BK_DB_TASKS, "a", 1, "one", 3) == 0);
    assert (bk_store_add (store, BK_DB_COUNTS, "n", 1, 5) == 0);
    assert (bk_store_add (store, BK_DB_COUNTS, "n", 1, -7) == 0);
    assert (bk_store_counter (store, BK_DB_COUNTS, "n", 1) == 0);
    assert (bk_store_add (store, BK_DB_COUNTS, "m", 1, 3) == 0);
    assert (bk_store_counter (store, BK_DB_COUNTS, "m", 1) == 3);
    assert (bk_store_commit (store) == 0);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_counter (store, BK_DB_COUNTS, "m", 1) == 3);
    assert (bk_store_add (store, BK_DB_COUNTS, "m", 1, 2) == 0);
    bk_store_abort (store); //  the uncommitted change is gone
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_counter (store, BK_DB_COUNTS, "m", 1) == 3);
    assert (bk_store_commit (store) == 0);

    //  grows a 1 MiB map well past its size, one commit at a time
    char big[4000];
    memset (big, 'x', sizeof big);
    for (int batch = 0; batch < 20; batch++) {
        assert (bk_store_begin (store, true) == 0);
        for (int i = 0; i < 100; i++) {
            char key[16];
            int n = snprintf (key, sizeof key, "k%05d", batch * 100 + i);
            assert (bk_store_put (store, BK_DB_ATTEMPTS, key, (size_t) n, big, sizeof big) == 0);
        }
        assert (bk_store_commit (store) == 0);
    }
    assert (bk_store_map_bytes (store) > 8 << 20);

    assert (bk_store_begin (store, false) == 0);
    bk_val_t k, v;
    assert (bk_store_get (store, BK_DB_TASKS, "a", 1, &v) == 0 && memcmp (v.data, "one", 3) == 0);
    assert (bk_store_get (store, BK_DB_TASKS, "c", 1, &v) == BK_NOTFOUND);
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TASKS);
    assert (bk_cursor_seek (cursor, NULL, 0, &k, &v) == 0 && memcmp (k.data, "a", 1) == 0);
    assert (bk_cursor_next (cursor, &k, &v) == 0 && memcmp (k.data, "b", 1) == 0);
    assert (bk_cursor_next (cursor, &k, &v) == BK_NOTFOUND);
    assert (bk_cursor_seek (cursor, "aa", 2, &k, &v) == 0 && memcmp (k.data, "b", 1) == 0);
    assert (bk_cursor_last (cursor, &k, &v) == 0 && memcmp (k.data, "b", 1) == 0);
    assert (bk_cursor_prev (cursor, &k, &v) == 0 && memcmp (k.data, "a", 1) == 0);
    bk_cursor_close (&cursor);
    bk_store_abort (store);

    //  a failed commit loses the transaction, not the store
    bk_store_set_commit_hook (store, s_disk_full);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_put (store, BK_DB_TASKS, "c", 1, "three", 5) == 0);
    assert (bk_store_commit (store) == BK_EFULL);
    bk_store_set_commit_hook (store, NULL);
    assert (bk_store_begin (store, false) == 0);
    assert (bk_store_get (store, BK_DB_TASKS, "c", 1, &v) == BK_NOTFOUND);
    bk_store_abort (store);
    assert (bk_store_reader_check (store) == 0);
    bk_store_destroy (&store);

    //  reopening keeps data; another layout version is refused
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_put (store, BK_DB_META, "version", 7, "999", 3) == 0);
    assert (bk_store_commit (store) == 0);
    bk_store_destroy (&store);
    assert (bk_store_open (dir, 0, false, err, sizeof err) == NULL);
    assert (strstr (err, "layout version 999"));

    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert (system (cmd) == 0);
    if (verbose)
        printf ("bk_store: ok\n");
}
