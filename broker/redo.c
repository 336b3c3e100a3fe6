/*  redo.c - the store's redo log (see redo.h)
 */
#include "redo.h"
#include "store.h" //  the selftest's directory

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_MAGIC  0x31525141u //  "AQR1"
#define S_HEADER 16          //  magic(4) size(4) seq(8)
#define S_HASH   16          //  BLAKE2b-128 of header and payload
#define S_STEP   (1u << 20)  //  the file grows by zero-filled steps of this

static const bk_redo_io_t s_system = {pwrite, pwritev, fdatasync};
static const bk_redo_io_t *s_io = &s_system;

void bk_redo_set_io (const bk_redo_io_t *io) {
    s_io = io ? io : &s_system;
}

struct _bk_redo_t {
    int fd;           //  the log file
    size_t pos;       //  where the next record goes
    size_t allocated; //  bytes of the file, zero-filled past the records
    bool written;     //  appended or reset since open: replay stops at pos
    uint8_t *buffer;  //  a record read back by replay
    size_t capacity;  //  its size
};

static int s_sync_parent (const char *path) {
    char dir[4096] = ".";
    const char *slash = strrchr (path, '/');
    if (slash == path)
        strcpy (dir, "/");
    else if (slash && (size_t) (slash - path) < sizeof dir) {
        memcpy (dir, path, (size_t) (slash - path));
        dir[slash - path] = 0;
    } else if (slash)
        return -1;
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync (fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close (fd);
    return rc;
}

bk_redo_t *bk_redo_open (const char *path, char *err, size_t err_size) {
    if (sodium_init () < 0) {
        snprintf (err, err_size, "cannot initialise libsodium");
        return NULL;
    }
    //  A new file's name must be on disk before its records are.
    int fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 && s_sync_parent (path) != 0) {
        close (fd);
        fd = -1;
    } else if (fd < 0 && errno == EEXIST)
        fd = open (path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0) {
        snprintf (err, err_size, "cannot open redo log '%s': %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    bk_redo_t *self = calloc (1, sizeof *self);
    assert (self);
    self->fd = fd;
    self->allocated = (size_t) st.st_size;
    return self;
}

void bk_redo_destroy (bk_redo_t **self_p) {
    assert (self_p);
    bk_redo_t *self = *self_p;
    if (!self)
        return;
    close (self->fd);
    free (self->buffer);
    free (self);
    *self_p = NULL;
}

static void s_hash (uint8_t hash[S_HASH], const uint8_t *header, const void *data, size_t size) {
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, S_HASH);
    crypto_generichash_update (&state, header, S_HEADER);
    crypto_generichash_update (&state, data, size);
    crypto_generichash_final (&state, hash, S_HASH);
}

//  Zero-fills the file up to at least end, in whole steps, so records
//  overwrite allocated blocks and their sync need not update the file size.
static int s_allocate (bk_redo_t *self, size_t end) {
    static const uint8_t zeros[64 << 10];
    size_t target = (end + S_STEP - 1) / S_STEP * S_STEP;
    while (self->allocated < target) {
        size_t n =
            target - self->allocated < sizeof zeros ? target - self->allocated : sizeof zeros;
        ssize_t rc = s_io->pwrite (self->fd, zeros, n, (off_t) self->allocated);
        if (rc < 0)
            return -errno;
        self->allocated += (size_t) rc;
    }
    return 0;
}

int bk_redo_append (bk_redo_t *self, uint64_t seq, const void *data, size_t size) {
    assert (size <= UINT32_MAX - S_HEADER - S_HASH);
    uint8_t header[S_HEADER], hash[S_HASH];
    uint32_t magic = S_MAGIC, size32 = (uint32_t) size;
    memcpy (header, &magic, 4);
    memcpy (header + 4, &size32, 4);
    memcpy (header + 8, &seq, 8);
    s_hash (hash, header, data, size);
    size_t total = S_HEADER + size + S_HASH;
    int rc = s_allocate (self, self->pos + total);
    if (rc != 0)
        return rc;
    struct iovec iov[3] = {{header, S_HEADER}, {(void *) data, size}, {hash, S_HASH}};
    size_t done = 0;
    while (done < total) {
        //  skip what a short write already wrote
        struct iovec rest[3];
        int n = 0;
        size_t skip = done;
        for (int i = 0; i < 3; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            rest[n].iov_base = (uint8_t *) iov[i].iov_base + skip;
            rest[n++].iov_len = iov[i].iov_len - skip;
            skip = 0;
        }
        ssize_t wrote = s_io->pwritev (self->fd, rest, n, (off_t) (self->pos + done));
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return wrote < 0 ? -errno : -EIO;
        done += (size_t) wrote;
    }
    if (s_io->fdatasync (self->fd) != 0)
        return -errno;
    self->pos += total;
    self->written = true;
    return 0;
}

size_t bk_redo_size (bk_redo_t *self) {
    return self->pos;
}

void bk_redo_reset (bk_redo_t *self) {
    self->pos = 0;
    self->written = true;
}

//  Reads the record at *offset into self->buffer: its seq and payload size,
//  and moves *offset past it. false at the end of the log (torn, zeroed,
//  short or garbled).
static bool s_read (bk_redo_t *self, size_t *offset, uint64_t *seq, size_t *size) {
    uint8_t header[S_HEADER];
    size_t end = self->written ? self->pos : self->allocated;
    if (*offset + S_HEADER > end || pread (self->fd, header, S_HEADER, (off_t) *offset) != S_HEADER)
        return false;
    uint32_t magic, size32;
    memcpy (&magic, header, 4);
    memcpy (&size32, header + 4, 4);
    memcpy (seq, header + 8, 8);
    if (magic != S_MAGIC || *offset + S_HEADER + size32 + S_HASH > end)
        return false;
    size_t need = (size_t) size32 + S_HASH;
    if (need > self->capacity) {
        uint8_t *grown = realloc (self->buffer, need);
        assert (grown);
        self->buffer = grown, self->capacity = need;
    }
    if (pread (self->fd, self->buffer, need, (off_t) (*offset + S_HEADER)) != (ssize_t) need)
        return false;
    uint8_t hash[S_HASH];
    s_hash (hash, header, self->buffer, size32);
    if (sodium_memcmp (hash, self->buffer + size32, S_HASH) != 0)
        return false;
    *size = size32;
    *offset += S_HEADER + need;
    return true;
}

int bk_redo_replay (bk_redo_t *self, uint64_t after, bk_redo_apply_fn *apply, void *arg,
                    uint64_t *last) {
    *last = after;
    size_t offset = 0, size;
    uint64_t seq;
    //  Records at or before the checkpoint are a stale lap: nothing newer.
    while (s_read (self, &offset, &seq, &size) && seq > after) {
        if (seq != *last + 1)
            return *last == after ? -1 : 0; //  a gap right after the checkpoint
        int rc = apply (arg, self->buffer, size);
        if (rc != 0)
            return rc;
        *last = seq;
    }
    return 0;
}

//  --------------------------------------------------------------------------

typedef struct {
    char seen[256]; //  payloads applied, concatenated
    int fail_at;    //  apply fails on this payload's first letter, 0 never
} s_test_log_t;

static int s_test_apply (void *arg, const uint8_t *data, size_t size) {
    s_test_log_t *log = arg;
    if (log->fail_at && size && data[0] == log->fail_at)
        return 7;
    strncat (log->seen, (const char *) data, size);
    return 0;
}

static void s_test_replay (const char *path, uint64_t after, int want_rc, const char *want,
                           uint64_t want_last) {
    char err[256];
    bk_redo_t *redo = bk_redo_open (path, err, sizeof err);
    assert (redo);
    s_test_log_t log = {{0}, 0};
    uint64_t last;
    assert (bk_redo_replay (redo, after, s_test_apply, &log, &last) == want_rc);
    assert (strcmp (log.seen, want) == 0);
    assert (want_rc != 0 || last == want_last);
    bk_redo_destroy (&redo);
}

void bk_redo_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], path[BK_STORE_TEST_DIR + 16], err[256];
    bk_store_test_dir (dir);
    snprintf (path, sizeof path, "%s/redo.log", dir);
    bk_redo_t *redo = bk_redo_open (path, err, sizeof err);
    assert (redo);
    assert (bk_redo_append (redo, 11, "a", 1) == 0);
    assert (bk_redo_append (redo, 12, "bb", 2) == 0);
    assert (bk_redo_append (redo, 13, "ccc", 3) == 0);
    assert (bk_redo_size (redo) == 3 * (S_HEADER + S_HASH) + 6);
    bk_redo_destroy (&redo);
    struct stat st;
    assert (stat (path, &st) == 0 && st.st_size == S_STEP); //  zero-filled ahead

    s_test_replay (path, 10, 0, "abbccc", 13); //  all after the checkpoint
    s_test_replay (path, 12, 0, "", 12);       //  the first is at or before it: a stale lap
    s_test_replay (path, 13, 0, "", 13);
    s_test_replay (path, 9, -1, "", 0); //  a gap: not this store's log
    s_test_log_t log = {{0}, 'b'};      //  apply's failure stops the replay
    redo = bk_redo_open (path, err, sizeof err);
    uint64_t last;
    assert (bk_redo_replay (redo, 10, s_test_apply, &log, &last) == 7);
    assert (strcmp (log.seen, "a") == 0 && last == 11);

    //  a new lap overwrites from the start; the old lap's rest does not replay
    bk_redo_reset (redo);
    assert (bk_redo_append (redo, 14, "dddd", 4) == 0);
    memset (&log, 0, sizeof log);
    assert (bk_redo_replay (redo, 13, s_test_apply, &log, &last) == 0);
    assert (strcmp (log.seen, "dddd") == 0 && last == 14);
    assert (bk_redo_append (redo, 15, "e", 1) == 0);
    bk_redo_destroy (&redo);
    s_test_replay (path, 13, 0, "dddde", 15);

    //  a torn record (a flipped byte, or cut short) ends the log
    int fd = open (path, O_RDWR);
    size_t second = S_HEADER + 4 + S_HASH;
    assert (pwrite (fd, "X", 1, (off_t) (second + S_HEADER)) == 1);
    s_test_replay (path, 13, 0, "dddd", 14);
    assert (ftruncate (fd, (off_t) (second + 3)) == 0);
    s_test_replay (path, 13, 0, "dddd", 14);
    assert (ftruncate (fd, 10) == 0);
    s_test_replay (path, 13, 0, "", 13);
    close (fd);

    //  once written, replay stops where the next record goes: a record
    //  whose sync failed (not counted) does not replay in this process
    redo = bk_redo_open (path, err, sizeof err);
    assert (bk_redo_append (redo, 14, "ff", 2) == 0);
    bk_redo_reset (redo);
    memset (&log, 0, sizeof log);
    assert (bk_redo_replay (redo, 13, s_test_apply, &log, &last) == 0 && last == 13);
    bk_redo_destroy (&redo);
    bk_store_test_remove (dir);
    if (verbose)
        printf ("bk_redo: ok\n");
}
