/*  queue.c - the ready queue: priority first, teams round-robin, then age */
#include "queue.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY 25 //  priority(1) team(16) seq(8)

struct _bk_queue_t {
    bk_store_t *store;     //  borrowed
    uint8_t last[256][16]; //  team served last, per priority byte
    bool has_last[256];    //  whether last[] is set
};

bk_queue_t *bk_queue_new (bk_store_t *store) {
    bk_queue_t *self = calloc (1, sizeof *self);
    assert (self);
    self->store = store;
    return self;
}

void bk_queue_destroy (bk_queue_t **self_p) {
    free (*self_p);
    *self_p = NULL;
}

static void s_key (uint8_t key[S_KEY], int priority, const uint8_t team[16], uint64_t seq) {
    key[0] = (uint8_t) (255 - priority);
    memcpy (key + 1, team, 16);
    for (int i = 0; i < 8; i++)
        key[17 + i] = (uint8_t) (seq >> (56 - 8 * i));
}

int bk_queue_push (bk_queue_t *self, int priority, const uint8_t team[16], uint64_t seq,
                   const uint8_t id[16]) {
    uint8_t key[S_KEY];
    s_key (key, priority, team, seq);
    return bk_store_put (self->store, BK_DB_READY, key, S_KEY, id, 16);
}

int bk_queue_remove (bk_queue_t *self, int priority, const uint8_t team[16], uint64_t seq) {
    uint8_t key[S_KEY];
    s_key (key, priority, team, seq);
    return bk_store_del (self->store, BK_DB_READY, key, S_KEY);
}

int bk_queue_pop (bk_queue_t *self, uint8_t id[16]) {
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_READY);
    if (!cursor)
        return BK_ESTORE;
    bk_val_t k, v;
    int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); //  the highest priority present
    if (rc == 0) {
        uint8_t level = ((const uint8_t *) k.data)[0];
        if (self->has_last[level]) {
            //  first entry of the next team: past every seq of the last one
            uint8_t after[S_KEY + 1];
            after[0] = level;
            memcpy (after + 1, self->last[level], 16);
            memset (after + 17, 0xFF, 8);
            after[S_KEY] = 0;
            if (bk_cursor_seek (cursor, after, sizeof after, &k, &v) != 0 ||
                ((const uint8_t *) k.data)[0] != level)
                rc = bk_cursor_seek (cursor, &level, 1, &k, &v); //  wrap around
        }
    }
    if (rc == 0 && k.size == S_KEY && v.size == 16) {
        uint8_t level = ((const uint8_t *) k.data)[0];
        memcpy (self->last[level], (const uint8_t *) k.data + 1, 16);
        self->has_last[level] = true;
        memcpy (id, v.data, 16);
        rc = bk_cursor_del (cursor);
    } else if (rc == 0)
        rc = BK_ESTORE;
    bk_cursor_close (&cursor);
    return rc;
}

//  --------------------------------------------------------------------------

void bk_queue_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_queue_t *queue = bk_queue_new (store);
    uint8_t a[16] = {1}, b[16] = {2}, c[16] = {3}, id[16];
    //  team a: 5 tasks, team b: 2, team c: 1, all priority 5; one priority 9
    uint64_t seq = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t tid[16] = {0xA, (uint8_t) i};
        assert (bk_queue_push (queue, 5, a, ++seq, tid) == 0);
    }
    for (int i = 0; i < 2; i++) {
        uint8_t tid[16] = {0xB, (uint8_t) i};
        assert (bk_queue_push (queue, 5, b, ++seq, tid) == 0);
    }
    uint8_t tc[16] = {0xC, 0}, urgent[16] = {0xF, 0};
    assert (bk_queue_push (queue, 5, c, ++seq, tc) == 0);
    assert (bk_queue_push (queue, 9, a, ++seq, urgent) == 0);

    //  priority first, then a, b, c in turn, each oldest first
    const uint8_t expect[][2] = {{0xF, 0}, {0xA, 0}, {0xB, 0}, {0xC, 0}, {0xA, 1},
                                 {0xB, 1}, {0xA, 2}, {0xA, 3}, {0xA, 4}};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        assert (bk_queue_pop (queue, id) == 0);
        assert (id[0] == expect[i][0] && id[1] == expect[i][1]);
    }
    assert (bk_queue_pop (queue, id) == BK_NOTFOUND);

    //  removal by key
    uint8_t x[16] = {0xE};
    assert (bk_queue_push (queue, 3, c, 77, x) == 0);
    assert (bk_queue_remove (queue, 3, c, 77) == 0);
    assert (bk_queue_pop (queue, id) == BK_NOTFOUND);
    bk_queue_destroy (&queue);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_queue: ok\n");
}
