/*  delay.c - the delay queue: items ordered by due time, in the store */
#include "delay.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY 25 //  due(8) kind(1) id(16)

static void s_key (uint8_t key[S_KEY], int64_t due, int kind, const uint8_t id[16]) {
    uint64_t u = due < 0 ? 0 : (uint64_t) due;
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t) (u >> (56 - 8 * i));
    key[8] = (uint8_t) kind;
    memcpy (key + 9, id, 16);
}

static int64_t s_due (const uint8_t *key) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | key[i];
    return (int64_t) u;
}

int bk_delay_push (bk_store_t *store, int64_t due, int kind, const uint8_t id[16]) {
    uint8_t key[S_KEY];
    s_key (key, due, kind, id);
    return bk_store_put (store, BK_DB_DELAY, key, S_KEY, "", 0);
}

int bk_delay_remove (bk_store_t *store, int64_t due, int kind, const uint8_t id[16]) {
    uint8_t key[S_KEY];
    s_key (key, due, kind, id);
    return bk_store_del (store, BK_DB_DELAY, key, S_KEY);
}

int bk_delay_next (bk_store_t *store, int64_t *due) {
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_DELAY);
    if (!cursor)
        return BK_ESTORE;
    bk_val_t k;
    int rc = bk_cursor_seek (cursor, NULL, 0, &k, NULL);
    if (rc == 0 && k.size == S_KEY)
        *due = s_due (k.data);
    bk_cursor_close (&cursor);
    return rc;
}

int bk_delay_pop (bk_store_t *store, int64_t now, int64_t *due, int *kind, uint8_t id[16]) {
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_DELAY);
    if (!cursor)
        return BK_ESTORE;
    bk_val_t k;
    int rc = bk_cursor_seek (cursor, NULL, 0, &k, NULL);
    if (rc == 0 && (k.size != S_KEY || s_due (k.data) > now))
        rc = BK_NOTFOUND;
    if (rc == 0) {
        *due = s_due (k.data);
        *kind = ((const uint8_t *) k.data)[8];
        memcpy (id, (const uint8_t *) k.data + 9, 16);
        rc = bk_cursor_del (cursor);
    }
    bk_cursor_close (&cursor);
    return rc;
}

void bk_delay_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t a[16] = {1}, b[16] = {2}, c[16] = {3}, id[16];
    int64_t due;
    int kind;
    assert (bk_delay_next (store, &due) == BK_NOTFOUND);
    assert (bk_delay_push (store, 3000, BK_DELAY_TASK, a) == 0);
    assert (bk_delay_push (store, 1000, BK_DELAY_TASK, b) == 0);
    assert (bk_delay_push (store, 2000, BK_DELAY_TASK, c) == 0);
    assert (bk_delay_next (store, &due) == 0 && due == 1000);
    assert (bk_delay_pop (store, 999, &due, &kind, id) == BK_NOTFOUND);
    assert (bk_delay_pop (store, 1000, &due, &kind, id) == 0 && id[0] == 2 && due == 1000);
    assert (kind == BK_DELAY_TASK);
    assert (bk_delay_remove (store, 2000, BK_DELAY_TASK, c) == 0);
    assert (bk_delay_pop (store, 5000, &due, &kind, id) == 0 && id[0] == 1 && due == 3000);
    assert (bk_delay_pop (store, 5000, &due, &kind, id) == BK_NOTFOUND);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_delay: ok\n");
}
