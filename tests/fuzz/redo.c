/*  redo.c - fuzzes the redo log's replay (broker/redo.c)

    Input: a selector byte, then
      0: the bytes of a log file, replayed after sequence number 0 and 2;
      1: records (a count, then a length byte and payload each) appended to
         a new log, then edits to the file (2 offset bytes and a value
         each, or a cut at an offset): replay gives a prefix of the records
         in order, byte for byte, and every record the edits left alone
         before the first one they touched;
      2: a checkpoint lap: records appended, the log reset, fewer records
         appended after them: replay after the checkpoint gives exactly the
         new records, never the stale ones behind them.
    The log lives in /dev/shm (or $TMPDIR): each append zero-fills 1 MiB.
*/
#include "fuzz.h"
#include "redo.h"

#include <fcntl.h>
#include <unistd.h>

#define S_RECORDS 8
#define S_HEADER  16 //  redo.c: magic, size, seq
#define S_HASH    16 //  redo.c: BLAKE2b-128

typedef struct {
    int count;                      //  records applied
    const uint8_t *want[S_RECORDS]; //  the payloads expected, in order
    size_t want_size[S_RECORDS];    //  their sizes
    int wanted;                     //  how many are expected at most
} s_seen_t;

static int s_apply (void *arg, const uint8_t *data, size_t size) {
    s_seen_t *seen = arg;
    if (seen->wanted >= 0) {
        FUZZ_CHECK (seen->count < seen->wanted);
        FUZZ_CHECK (size == seen->want_size[seen->count] &&
                    (size == 0 || memcmp (data, seen->want[seen->count], size) == 0));
    }
    seen->count++;
    return 0;
}

static char s_path[256];

static bk_redo_t *s_open (void) {
    char err[256];
    bk_redo_t *redo = bk_redo_open (s_path, err, sizeof err);
    FUZZ_CHECK (redo);
    return redo;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    if (!*s_path) {
        const char *dir = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv ("TMPDIR");
        snprintf (s_path, sizeof s_path, "%s/aq-fuzz-redo-%d", dir ? dir : "/tmp", (int) getpid ());
    }
    unlink (s_path);
    int which = (int) (fuzz_take (&data, &size, 1) % 3);
    s_seen_t seen = {.wanted = -1};
    uint64_t last;
    if (which == 0) {
        int fd = open (s_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        FUZZ_CHECK (fd >= 0 && write (fd, data, size) == (ssize_t) size);
        close (fd);
        bk_redo_t *redo = s_open ();
        int rc = bk_redo_replay (redo, 0, s_apply, &seen, &last);
        FUZZ_CHECK (rc == 0 || rc == -1);
        FUZZ_CHECK (last == (uint64_t) seen.count);
        rc = bk_redo_replay (redo, 2, s_apply, &seen, &last);
        FUZZ_CHECK ((rc == 0 || rc == -1) && last >= 2);
        bk_redo_destroy (&redo);
        unlink (s_path);
        return 0;
    }
    //  the records: a count, then a length and the payload each
    int count = (int) (fuzz_take (&data, &size, 1) % S_RECORDS) + 1;
    for (int i = 0; i < count; i++) {
        size_t len = (size_t) fuzz_take (&data, &size, 1) % 64;
        len = len < size ? len : size;
        seen.want[i] = data, seen.want_size[i] = len;
        data += len, size -= len;
    }
    bk_redo_t *redo = s_open ();
    size_t end[S_RECORDS]; //  where each record ends in the file
    for (int i = 0; i < count; i++) {
        FUZZ_CHECK (bk_redo_append (redo, (uint64_t) i + 1, seen.want[i], seen.want_size[i]) == 0);
        end[i] = bk_redo_size (redo);
    }
    if (which == 2) {
        //  a checkpoint, then fewer records: the stale lap is never replayed
        int fresh = count / 2;
        bk_redo_reset (redo);
        for (int i = 0; i < fresh; i++)
            FUZZ_CHECK (bk_redo_append (redo, (uint64_t) (count + 1 + i), seen.want[i],
                                        seen.want_size[i]) == 0);
        bk_redo_destroy (&redo);
        redo = s_open ();
        seen.wanted = fresh;
        FUZZ_CHECK (bk_redo_replay (redo, (uint64_t) count, s_apply, &seen, &last) == 0);
        FUZZ_CHECK (seen.count == fresh && last == (uint64_t) (count + fresh));
        bk_redo_destroy (&redo);
        unlink (s_path);
        return 0;
    }
    bk_redo_destroy (&redo);
    //  edits: (offset, value) pairs; offset 0xFFFF cuts the file at the value * 4
    size_t first = SIZE_MAX; //  the first byte an edit changed
    int fd = open (s_path, O_RDWR);
    FUZZ_CHECK (fd >= 0);
    while (size >= 3) {
        size_t offset = (size_t) fuzz_take (&data, &size, 2);
        uint8_t value = (uint8_t) fuzz_take (&data, &size, 1);
        if (offset == 0xFFFF) {
            FUZZ_CHECK (ftruncate (fd, (off_t) value * 4) == 0);
            first = first < (size_t) value * 4 ? first : (size_t) value * 4;
            continue;
        }
        uint8_t old = 0;
        if (pread (fd, &old, 1, (off_t) offset) == 1 && old != value) {
            FUZZ_CHECK (pwrite (fd, &value, 1, (off_t) offset) == 1);
            first = first < offset ? first : offset;
        }
    }
    close (fd);
    redo = s_open ();
    seen.wanted = count;
    int rc = bk_redo_replay (redo, 0, s_apply, &seen, &last);
    FUZZ_CHECK ((rc == 0 || rc == -1) && last == (uint64_t) seen.count);
    int intact = 0;
    while (intact < count && end[intact] <= first)
        intact++;
    if (seen.count < intact) {
        fprintf (stderr, "%d records, %d intact before byte %zu, %d replayed\n", count, intact,
                 first, seen.count);
        FUZZ_CHECK (false);
    }
    bk_redo_destroy (&redo);
    unlink (s_path);
    return 0;
}
