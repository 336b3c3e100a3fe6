/*  redo.h - the store's redo log: one file of checksummed records, each the
    changes of one commit, written and synced before the commit is answered.

    The store keeps its LMDB write transaction open across many commits and
    checkpoints it (one synced LMDB commit) now and then; a commit in between
    costs one sequential write and one fdatasync of this file instead of
    LMDB's two (its scattered pages, then its meta page). After a crash the records newer than
    the last checkpoint are replayed. The log knows nothing of LMDB: a record
    is bytes and a sequence number.

    Records are written from the start of the file again after every
    checkpoint (bk_redo_reset), so the file stays as large as the longest run
    between two checkpoints. A record is [magic][size][seq][payload][hash]; a
    torn, zeroed or stale record ends the log. The file grows in zero-filled
    steps ahead of the records, so a commit overwrites allocated blocks.
*/
#ifndef BK_REDO_H
#define BK_REDO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct _bk_redo_t bk_redo_t;

//  The log's file layer: every write and sync of a log goes through these,
//  so that a test can put a simulated disk under it (power_test.c loses
//  what was not synced when it cuts the power).
typedef struct {
    ssize_t (*pwrite) (int fd, const void *data, size_t size, off_t at);
    ssize_t (*pwritev) (int fd, const struct iovec *iov, int count, off_t at);
    int (*fdatasync) (int fd);
} bk_redo_io_t;
//  Puts io under every log (NULL: the system's calls again).
void bk_redo_set_io (const bk_redo_io_t *io);

//  Opens (creating) the log file at path; appends start at its beginning.
//  NULL and err filled on failure.
bk_redo_t *bk_redo_open (const char *path, char *err, size_t err_size);
void bk_redo_destroy (bk_redo_t **self_p);

//  Writes one record after the last and syncs it. 0 or -errno (the record
//  may be partly written: it will not replay).
int bk_redo_append (bk_redo_t *self, uint64_t seq, const void *data, size_t size);

//  Bytes written since the last reset.
size_t bk_redo_size (bk_redo_t *self);

//  The next record goes to the start of the file (what it holds is
//  checkpointed: replay will not follow it past the new records).
void bk_redo_reset (bk_redo_t *self);

//  Calls apply (arg, payload, size) for each record after seq `after`, from
//  the start of the file, while the sequence numbers follow one another;
//  stops at the end of the log. *last is the last sequence number applied
//  (after, when none). 0; -1 when the first newer record is not after + 1
//  (the log does not belong to this store); or what apply returned.
typedef int (bk_redo_apply_fn) (void *arg, const uint8_t *data, size_t size);
int bk_redo_replay (bk_redo_t *self, uint64_t after, bk_redo_apply_fn *apply, void *arg,
                    uint64_t *last);

void bk_redo_test (bool verbose);
#endif
