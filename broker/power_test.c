/*  power_test.c - the power cut at a random point of the store's writes

    Like SQLite's crash-test file layer: the redo log's writes go through a
    simulated disk (redo.h's file layer) that keeps what the last fdatasync
    made durable. A cut keeps that, plus each write made since with even
    odds (a disk may reorder them), and tears the write under way at a
    random byte; a cut at an fdatasync is one that never completed.

    LMDB's files need no simulation: the store writes them only in a
    checkpoint, a synced LMDB commit that LMDB makes atomic with its two
    meta pages, and a cut falls between two calls of the log, never inside
    LMDB. The files a killed process leaves are what such a disk holds:
    pages LMDB wrote since its last commit are free pages no meta page
    names. (The promise was also checked outside the project with LazyFS:
    docs/operations.md "Durability".)

    Each cut: a child process runs a workload of commits (records of random
    sizes put and deleted, a counter) with checkpoints every few KiB of
    log, tells the parent each commit acknowledged (bk_store_commit returned
    0: the broker answers its clients then) and dies at the cut. The parent
    opens the store, which must open, and checks that every acknowledged
    commit is there and that what is there is whole commits in order.
    AQ_POWER_CUTS sets how many cuts (default 200; tests/test_power.py runs
    1,000).
*/
#include "redo.h"
#include "store.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_COMMITS 40   //  commits of one workload
#define S_VALUE   3000 //  largest record
#define S_PENDING 64   //  writes since a sync, at most (the log syncs each record)

typedef struct {
    uint8_t *data; //  bytes
    size_t size;   //  how many
    off_t at;      //  where
} s_write_t;

//  The simulated disk of the child: one log file.
static struct {
    long ops;                     //  calls of the file layer so far
    long cut;                     //  the call the power goes at
    unsigned seed;                //  what the cut keeps
    uint8_t *durable;             //  the file as the last completed sync left it
    size_t size;                  //  its size
    s_write_t pending[S_PENDING]; //  writes since
    int npending;
} s_disk;

static void s_put (uint8_t **image, size_t *size, const uint8_t *data, size_t n, off_t at) {
    size_t end = (size_t) at + n;
    if (end > *size) {
        *image = realloc (*image, end);
        assert (*image);
        memset (*image + *size, 0, end - *size);
        *size = end;
    }
    memcpy (*image + at, data, n);
}

//  The power goes: the file becomes what the disk kept, and the process ends.
static void s_cut (int fd, const uint8_t *data, size_t n, off_t at) {
    uint8_t *image = malloc (s_disk.size ? s_disk.size : 1);
    assert (image);
    if (s_disk.size)
        memcpy (image, s_disk.durable, s_disk.size);
    size_t size = s_disk.size;
    for (int i = 0; i < s_disk.npending; i++)
        if (rand_r (&s_disk.seed) % 2)
            s_put (&image, &size, s_disk.pending[i].data, s_disk.pending[i].size,
                   s_disk.pending[i].at);
    if (data)
        s_put (&image, &size, data, rand_r (&s_disk.seed) % (n + 1), at);
    assert (ftruncate (fd, 0) == 0);
    assert (pwrite (fd, image, size, 0) == (ssize_t) size);
    _exit (0);
}

static ssize_t s_pwrite (int fd, const void *data, size_t n, off_t at) {
    if (++s_disk.ops == s_disk.cut)
        s_cut (fd, data, n, at);
    assert (s_disk.npending < S_PENDING);
    uint8_t *copy = malloc (n);
    assert (copy);
    memcpy (copy, data, n);
    s_disk.pending[s_disk.npending++] = (s_write_t){copy, n, at};
    return pwrite (fd, data, n, at);
}

static ssize_t s_pwritev (int fd, const struct iovec *iov, int count, off_t at) {
    size_t n = 0;
    for (int i = 0; i < count; i++)
        n += iov[i].iov_len;
    uint8_t *flat = malloc (n ? n : 1);
    assert (flat);
    for (int i = 0, done = 0; i < count; done += (int) iov[i].iov_len, i++)
        memcpy (flat + done, iov[i].iov_base, iov[i].iov_len);
    ssize_t rc = s_pwrite (fd, flat, n, at);
    free (flat);
    return rc;
}

static int s_fdatasync (int fd) {
    if (++s_disk.ops == s_disk.cut)
        s_cut (fd, NULL, 0, 0);
    for (int i = 0; i < s_disk.npending; i++) {
        s_put (&s_disk.durable, &s_disk.size, s_disk.pending[i].data, s_disk.pending[i].size,
               s_disk.pending[i].at);
        free (s_disk.pending[i].data);
    }
    s_disk.npending = 0;
    return 0; //  the simulated disk is the durable one: no need to wait for the real
}

static const bk_redo_io_t s_simulated = {s_pwrite, s_pwritev, s_fdatasync};

static void s_key (int i, char key[8]) {
    snprintf (key, 8, "t%05d", i % 100000);
}

//  Commit i's record: a size and bytes that say which commit wrote them.
static size_t s_value (int i, uint8_t value[S_VALUE]) {
    size_t size = (size_t) (i * 7919) % S_VALUE + 1;
    for (size_t j = 0; j < size; j++)
        value[j] = (uint8_t) (i * 31 + j);
    return size;
}

//  Commit i deletes commit i - 3's record when i is a multiple of 4.
static bool s_deleted_by (int i, int commits) {
    return (i + 3) % 4 == 0 && i + 3 <= commits;
}

//  The child: opens the store on dir, runs the workload under the
//  simulated disk (cut at call cut; 0: never), writes each acknowledged
//  commit's number to ack. Returns the file layer calls made.
static long s_workload (const char *dir, long cut, unsigned seed, size_t checkpoint, int ack) {
    char err[256];
    bk_store_t *store = bk_store_open (dir, 1 << 22, false, err, sizeof err);
    assert (store);
    bk_store_set_checkpoint (store, 3600 * 1000, checkpoint);
    memset (&s_disk, 0, sizeof s_disk);
    s_disk.cut = cut;
    s_disk.seed = seed;
    bk_redo_set_io (&s_simulated);
    uint8_t value[S_VALUE];
    for (int i = 1; i <= S_COMMITS; i++) {
        char key[8];
        assert (bk_store_begin (store, true) == 0);
        s_key (i, key);
        assert (bk_store_put (store, BK_DB_TASKS, key, 6, value, s_value (i, value)) == 0);
        if (i % 4 == 0) {
            s_key (i - 3, key);
            assert (bk_store_del (store, BK_DB_TASKS, key, 6) == 0);
        }
        assert (bk_store_add (store, BK_DB_COUNTS, "n", 1, 1) == 0);
        assert (bk_store_commit (store) == 0);
        if (ack >= 0)
            assert (write (ack, &i, sizeof i) == sizeof i);
        bk_store_settle (store);
    }
    bk_redo_set_io (NULL);
    long ops = s_disk.ops;
    free (s_disk.durable);
    bk_store_destroy (&store);
    return ops;
}

//  The parent, after the cut: 0 when the store opens and holds commits
//  1..n whole for some n >= acked, and nothing of later ones; else 1 (lost
//  or broken) or 2 (refused to open).
static int s_check (const char *dir, int acked, int *held) {
    char err[256];
    bk_store_t *store = bk_store_open (dir, 1 << 22, false, err, sizeof err);
    if (!store) {
        fprintf (stderr, "bk_power: the store did not open after a cut: %s\n", err);
        return 2;
    }
    assert (bk_store_begin (store, false) == 0);
    int n = (int) bk_store_counter (store, BK_DB_COUNTS, "n", 1);
    bool whole = n >= acked && n <= S_COMMITS;
    uint8_t value[S_VALUE];
    for (int i = 1; i <= S_COMMITS && whole; i++) {
        char key[8];
        s_key (i, key);
        bk_val_t val;
        int rc = bk_store_get (store, BK_DB_TASKS, key, 6, &val);
        bool expected = i <= n && !s_deleted_by (i, n);
        size_t size = s_value (i, value);
        whole =
            expected ? rc == 0 && val.size == size && memcmp (val.data, value, size) == 0 : rc != 0;
    }
    bk_store_commit (store);
    bk_store_destroy (&store);
    *held = n;
    if (!whole)
        fprintf (stderr, "bk_power: %d commits acknowledged, the store holds %d or is broken\n",
                 acked, n);
    return whole ? 0 : 1;
}

void bk_power_test (bool verbose) {
    const char *env = getenv ("AQ_POWER_CUTS");
    int cuts = env ? atoi (env) : 200;
    static const size_t checkpoints[] = {2048, 6000, 20000, 1 << 20};
    long ops[4];
    char dir[BK_STORE_TEST_DIR];
    for (int c = 0; c < 4; c++) { //  how many calls each setting makes, cut nowhere
        bk_store_test_dir (dir);
        ops[c] = s_workload (dir, 0, 0, checkpoints[c], -1);
        bk_store_test_remove (dir);
        assert (ops[c] > S_COMMITS);
    }
    int lost = 0, refused = 0, early = 0;
    unsigned seed = (unsigned) getpid ();
    for (int cut = 0; cut < cuts; cut++) {
        int c = cut % 4;
        long at = 1 + (long) (rand_r (&seed) % (unsigned) ops[c]);
        unsigned keep = rand_r (&seed);
        int pipe_fds[2];
        assert (pipe (pipe_fds) == 0);
        bk_store_test_dir (dir);
        pid_t pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            close (pipe_fds[0]);
            s_workload (dir, at, keep, checkpoints[c], pipe_fds[1]);
            _exit (3); //  never cut: cannot be, at <= ops
        }
        close (pipe_fds[1]);
        int acked = 0, number;
        while (read (pipe_fds[0], &number, sizeof number) == sizeof number)
            acked = number;
        close (pipe_fds[0]);
        int status;
        assert (waitpid (pid, &status, 0) == pid);
        assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
        int held = 0;
        int rc = s_check (dir, acked, &held);
        lost += rc == 1;
        refused += rc == 2;
        early += held > acked; //  cut after the record's sync, before its answer
        bk_store_test_remove (dir);
    }
    if (verbose)
        printf (" * bk_power: %d cuts, %d acknowledged commits lost, %d refused starts (%d held "
                "a commit not yet acknowledged)\n",
                cuts, lost, refused, early);
    assert (lost == 0 && refused == 0);
}
