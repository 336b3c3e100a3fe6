/*  store_test.c - the store's selftest and the test stores other selftests use

    Apart from store.c so that each stays a readable size. It uses
    store.h and redo.h as any other module would, and <lmdb.h> only to
    write a layout version behind the store's back, as another build would.
*/
#include "store.h"
#include "redo.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  --------------------------------------------------------------------------

void bk_store_test_dir (char dir[BK_STORE_TEST_DIR]) {
    snprintf (dir, BK_STORE_TEST_DIR, "/tmp/aq-store-test-XXXXXX");
    assert (mkdtemp (dir));
}

static int s_test_remove_one (const char *path, const struct stat *st, int type, struct FTW *ftw) {
    return remove (path);
}

void bk_store_test_remove (const char *dir) {
    assert (nftw (dir, s_test_remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

bk_store_t *bk_store_test_new (char dir[BK_STORE_TEST_DIR]) {
    char err[256];
    bk_store_test_dir (dir);
    bk_store_t *store = bk_store_open (dir, 1 << 20, true, err, sizeof err);
    assert (store);
    assert (bk_store_begin (store, true) == 0);
    return store;
}

void bk_store_test_destroy (bk_store_t **self_p, const char *dir) {
    bk_store_abort (*self_p);
    bk_store_destroy (self_p);
    bk_store_test_remove (dir);
}

static int s_disk_full (void) {
    return ENOSPC;
}

static bool s_test_has (bk_store_t *store, const char *key, const char *value) {
    bk_val_t v;
    int rc = bk_store_get (store, BK_DB_TASKS, key, strlen (key), &v);
    return value ? rc == 0 && v.size == strlen (value) && memcmp (v.data, value, v.size) == 0
                 : rc == BK_NOTFOUND;
}

//  The redo log: commits between checkpoints survive a crash (replayed at
//  open) and an abort (replayed at the next begin); a failed commit loses
//  only itself; a checkpoint empties the log.
static void s_test_redo (void) {
    char dir[BK_STORE_TEST_DIR], path[BK_STORE_TEST_DIR + 16], err[256];
    bk_store_test_dir (dir);
    snprintf (path, sizeof path, "%s/redo.log", dir);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) { //  commits, never checkpointed, then dies as kill -9 would
        bk_store_t *store = bk_store_open (dir, 1 << 20, false, err, sizeof err);
        assert (store);
        bk_store_set_checkpoint (store, 3600 * 1000, 1 << 30);
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_put (store, BK_DB_TASKS, "a", 1, "one", 3) == 0);
        assert (bk_store_put (store, BK_DB_TASKS, "b", 1, "two", 3) == 0);
        assert (bk_store_add (store, BK_DB_COUNTS, "n", 1, 5) == 0);
        assert (bk_store_commit (store) == 0);
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_put (store, BK_DB_TASKS, "c", 1, "lost", 4) == 0);
        bk_store_abort (store); //  replayed back to "a", "b", n = 5
        assert (bk_store_begin (store, true) == 0);
        assert (s_test_has (store, "a", "one") && s_test_has (store, "c", NULL));
        assert (bk_store_counter (store, BK_DB_COUNTS, "n", 1) == 5);
        bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TASKS);
        bk_val_t k, v;
        assert (bk_cursor_seek (cursor, "a", 1, &k, &v) == 0 && bk_cursor_del (cursor) == 0);
        bk_cursor_close (&cursor);
        assert (bk_store_put (store, BK_DB_TASKS, "b", 1, "TWO", 3) == 0);
        assert (bk_store_add (store, BK_DB_COUNTS, "n", 1, 2) == 0);
        assert (bk_store_commit (store) == 0);
        bk_store_set_commit_hook (store, s_disk_full);
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_put (store, BK_DB_TASKS, "d", 1, "lost", 4) == 0);
        assert (bk_store_commit (store) == BK_EFULL);
        _exit (0);
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) &&
            WEXITSTATUS (status) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && st.st_size > 0);
    bk_store_t *store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_replayed (store) == 2);
    assert (bk_store_begin (store, false) == 0);
    assert (s_test_has (store, "a", NULL) && s_test_has (store, "b", "TWO"));
    assert (s_test_has (store, "c", NULL) && s_test_has (store, "d", NULL));
    assert (bk_store_counter (store, BK_DB_COUNTS, "n", 1) == 7);
    bk_store_abort (store);

    assert (!bk_store_open (dir, 0, false, err, sizeof err)); //  one broker per store
    assert (strstr (err, "is in use by another broker"));

    bk_store_destroy (&store);

    //  a checkpoint due after every commit, taken by settle only: a child
    //  dying right after its third commit leaves that one to replay, one
    //  that settled first leaves nothing
    for (int settled = 0; settled < 2; settled++) {
        child = fork ();
        assert (child >= 0);
        if (child == 0) {
            store = bk_store_open (dir, 0, false, err, sizeof err);
            assert (store);
            bk_store_set_checkpoint (store, 0, 0);
            for (int i = 0; i < 3; i++) {
                if (i > 0)
                    bk_store_settle (store);
                assert (bk_store_begin (store, true) == 0);
                assert (bk_store_put (store, BK_DB_TASKS, "e", 1, "five", 4) == 0);
                assert (bk_store_commit (store) == 0);
            }
            if (settled)
                bk_store_settle (store);
            _exit (0);
        }
        assert (waitpid (child, &status, 0) == child && WIFEXITED (status) &&
                WEXITSTATUS (status) == 0);
        store = bk_store_open (dir, 0, false, err, sizeof err);
        assert (store && bk_store_replayed (store) == (settled ? 0 : 1));
        bk_store_destroy (&store);
    }
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_replayed (store) == 0); //  a clean stop checkpoints
    assert (bk_store_begin (store, false) == 0);
    assert (s_test_has (store, "e", "five") && s_test_has (store, "b", "TWO"));
    bk_store_abort (store);
    bk_store_destroy (&store);

    //  a nosync run first replays what a crashed full-sync run left, so a
    //  later full-sync run finds nothing stale to replay over its changes
    child = fork ();
    assert (child >= 0);
    if (child == 0) {
        store = bk_store_open (dir, 0, false, err, sizeof err);
        assert (store);
        bk_store_set_checkpoint (store, 3600 * 1000, 1 << 30);
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_put (store, BK_DB_TASKS, "x", 1, "crash", 5) == 0);
        assert (bk_store_commit (store) == 0);
        _exit (0);
    }
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) &&
            WEXITSTATUS (status) == 0);
    store = bk_store_open (dir, 0, true, err, sizeof err);
    assert (store && bk_store_replayed (store) == 1);
    assert (bk_store_begin (store, true) == 0);
    assert (s_test_has (store, "x", "crash"));
    assert (bk_store_put (store, BK_DB_TASKS, "x", 1, "nosync", 6) == 0);
    assert (bk_store_commit (store) == 0);
    bk_store_destroy (&store);
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_replayed (store) == 0);
    assert (bk_store_begin (store, false) == 0);
    assert (s_test_has (store, "x", "nosync"));
    bk_store_abort (store);
    bk_store_destroy (&store);

    //  a torn record (the crash cut its write short) ends the log: the
    //  store opens with what its checkpoint holds
    int fd = open (path, O_WRONLY);
    assert (fd >= 0 && pwrite (fd, "AQR1garbage", 11, 0) == 11);
    close (fd);
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_replayed (store) == 0);
    assert (bk_store_begin (store, false) == 0);
    assert (s_test_has (store, "x", "nosync") && s_test_has (store, "e", "five"));
    bk_store_abort (store);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);
}

//  Opens dir after writing text as its layout version behind the store's
//  back (as another build would have).
static bk_store_t *s_test_reopen_layout (const char *dir, const char *text) {
    char err[256];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert (mdb_env_create (&env) == 0 && mdb_env_set_maxdbs (env, BK_DB_COUNT) == 0);
    assert (mdb_env_open (env, dir, MDB_NOTLS, 0600) == 0);
    assert (mdb_txn_begin (env, NULL, 0, &txn) == 0);
    assert (mdb_dbi_open (txn, "meta", 0, &dbi) == 0);
    MDB_val key = {7, "version"}, val = {strlen (text), (void *) text};
    assert (mdb_put (txn, dbi, &key, &val, 0) == 0 && mdb_txn_commit (txn) == 0);
    mdb_env_close (env);
    bk_store_t *store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store);
    return store;
}

//  Layout 1 opens; a layout set counts once committed, survives a crash
//  through the redo log, and is what the next open sees.
static void s_test_layout (void) {
    char dir[BK_STORE_TEST_DIR], err[256];
    bk_store_test_dir (dir);
    bk_store_t *store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_layout (store) == BK_STORE_VERSION);
    bk_store_destroy (&store);
    store = s_test_reopen_layout (dir, "1");
    assert (bk_store_layout (store) == 1);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_set_layout (store, 2) == 0);
    assert (bk_store_layout (store) == 1); //  not before the commit
    bk_store_abort (store);
    assert (bk_store_layout (store) == 1);
    bk_store_set_commit_hook (store, s_disk_full);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_set_layout (store, 2) == 0);
    assert (bk_store_commit (store) == BK_EFULL && bk_store_layout (store) == 1);
    bk_store_set_commit_hook (store, NULL);
    bk_store_destroy (&store);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) { //  sets layout 2, never checkpointed, dies
        store = bk_store_open (dir, 0, false, err, sizeof err);
        assert (store && bk_store_layout (store) == 1);
        bk_store_set_checkpoint (store, 3600 * 1000, 1 << 30);
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_set_layout (store, 2) == 0);
        assert (bk_store_commit (store) == 0 && bk_store_layout (store) == 2);
        _exit (0);
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) &&
            WEXITSTATUS (status) == 0);
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_replayed (store) == 1 && bk_store_layout (store) == 2);
    bk_store_destroy (&store);
    store = bk_store_open (dir, 0, true, err, sizeof err); //  nosync: an LMDB commit
    assert (store && bk_store_layout (store) == 2);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_set_layout (store, 1) == 0);
    assert (bk_store_commit (store) == 0 && bk_store_layout (store) == 1);
    bk_store_destroy (&store);
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_layout (store) == 1);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);
}

void bk_store_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], err[256];
    bk_store_test_dir (dir);
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

    //  reopening keeps data; a layout newer than the build, or none this
    //  build knows, is refused
    store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_layout (store) == BK_STORE_VERSION);
    const char *refused[] = {"999", "3", "0", "2x", ""};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        assert (bk_store_begin (store, true) == 0);
        assert (bk_store_put (store, BK_DB_META, "version", 7, refused[i], strlen (refused[i])) ==
                0);
        assert (bk_store_commit (store) == 0);
        bk_store_destroy (&store);
        assert (bk_store_open (dir, 0, false, err, sizeof err) == NULL);
        char want[128];
        snprintf (want, sizeof want, "layout version %s, this build needs %d", refused[i],
                  BK_STORE_VERSION);
        assert (strstr (err, want));
        store = s_test_reopen_layout (dir, "1");
    }
    bk_store_destroy (&store);
    bk_store_test_remove (dir);
    s_test_layout ();
    s_test_redo ();
    if (verbose)
        printf ("bk_store: ok\n");
}
