/*  waiters.c - held TASK_GET ?wait requests (long polls) */
#include "waiters.h"

#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _bk_waiters_t {
    bk_waiter_t *items; //  held requests, unordered
    size_t count, cap;  //  used and allocated
    zhashx_t *index;    //  task id -> number of waiters (as a pointer-sized integer)
    int64_t earliest;   //  lower bound of every deadline
};

bk_waiters_t *bk_waiters_new (void) {
    bk_waiters_t *self = calloc (1, sizeof *self);
    assert (self);
    self->index = zhashx_new ();
    assert (self->index);
    self->earliest = INT64_MAX;
    return self;
}

void bk_waiters_destroy (bk_waiters_t **self_p) {
    bk_waiters_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->index);
        free (self->items);
        free (self);
        *self_p = NULL;
    }
}

static void s_index (bk_waiters_t *self, const char *id, int delta) {
    intptr_t n = (intptr_t) zhashx_lookup (self->index, id) + delta;
    if (n > 0)
        zhashx_update (self->index, id, (void *) n);
    else
        zhashx_delete (self->index, id);
}

bool bk_waiters_add (bk_waiters_t *self, void *socket, const void *rid, size_t rid_size,
                     int64_t corr, const char *id, int64_t deadline) {
    if (rid_size > sizeof self->items[0].rid || strlen (id) >= sizeof self->items[0].id)
        return false;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->items = realloc (self->items, self->cap * sizeof *self->items);
        assert (self->items);
    }
    bk_waiter_t *w = &self->items[self->count++];
    w->socket = socket;
    memcpy (w->rid, rid, rid_size);
    w->rid_size = rid_size;
    w->corr = corr;
    snprintf (w->id, sizeof w->id, "%s", id);
    w->deadline = deadline;
    if (deadline < self->earliest)
        self->earliest = deadline;
    s_index (self, id, 1);
    return true;
}

bool bk_waiters_has (bk_waiters_t *self, const char *id) {
    return zhashx_lookup (self->index, id) != NULL;
}

static void s_remove (bk_waiters_t *self, size_t i, bk_waiter_t *out) {
    *out = self->items[i];
    self->items[i] = self->items[--self->count];
    s_index (self, out->id, -1);
}

bool bk_waiters_take (bk_waiters_t *self, const char *id, bk_waiter_t *out) {
    if (!bk_waiters_has (self, id))
        return false;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->items[i].id, id) == 0) {
            s_remove (self, i, out);
            return true;
        }
    return false;
}

bk_waiter_t *bk_waiters_expire (bk_waiters_t *self, int64_t now, size_t *count) {
    *count = 0;
    if (now < self->earliest)
        return NULL;
    bk_waiter_t *out = NULL;
    size_t cap = 0;
    self->earliest = INT64_MAX;
    for (size_t i = 0; i < self->count;) {
        if (self->items[i].deadline <= now) {
            if (*count == cap) {
                cap = cap ? cap * 2 : 16;
                out = realloc (out, cap * sizeof *out);
                assert (out);
            }
            s_remove (self, i, &out[(*count)++]); //  moves the last item into i
        } else {
            if (self->items[i].deadline < self->earliest)
                self->earliest = self->items[i].deadline;
            i++;
        }
    }
    return out;
}

int64_t bk_waiters_next_deadline (bk_waiters_t *self) {
    return self->earliest;
}

size_t bk_waiters_count (bk_waiters_t *self) {
    return self->count;
}

void bk_waiters_test (bool verbose) {
    bk_waiters_t *waiters = bk_waiters_new ();
    bk_waiter_t w;
    assert (bk_waiters_add (waiters, NULL, "r1", 2, 1, "task-a", 100));
    assert (bk_waiters_add (waiters, NULL, "r2", 2, 2, "task-a", 200));
    assert (bk_waiters_add (waiters, NULL, "r3", 2, 3, "task-b", 50));
    assert (bk_waiters_has (waiters, "task-a") && !bk_waiters_has (waiters, "task-c"));
    assert (bk_waiters_next_deadline (waiters) == 50);
    size_t count;
    assert (bk_waiters_expire (waiters, 49, &count) == NULL && count == 0);
    assert (bk_waiters_take (waiters, "task-a", &w) && w.corr == 1);
    assert (bk_waiters_take (waiters, "task-a", &w) && w.corr == 2);
    assert (!bk_waiters_take (waiters, "task-a", &w) && !bk_waiters_has (waiters, "task-a"));
    bk_waiter_t *gone = bk_waiters_expire (waiters, 50, &count);
    assert (count == 1 && gone[0].corr == 3 && memcmp (gone[0].rid, "r3", 2) == 0);
    free (gone);
    assert (bk_waiters_count (waiters) == 0 && bk_waiters_next_deadline (waiters) == INT64_MAX);
    for (int i = 0; i < 1000; i++)
        assert (bk_waiters_add (waiters, NULL, "r", 1, i, "many", i));
    gone = bk_waiters_expire (waiters, 499, &count);
    assert (count == 500 && bk_waiters_count (waiters) == 500);
    for (size_t i = 0; i < count; i++)
        assert (gone[i].deadline <= 499);
    free (gone);
    assert (bk_waiters_next_deadline (waiters) == 500);
    bk_waiters_destroy (&waiters);
    if (verbose)
        printf ("bk_waiters: ok\n");
}
