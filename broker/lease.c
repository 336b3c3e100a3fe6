/*  lease.c - connected workers, their credit, and the tasks leased to them

    Workers number in the tens and leases in the hundreds (slots in flight),
    so plain arrays with linear search are the simplest fast structure.
*/
#include "lease.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef struct {
    uint8_t id[16];   //  task id
    int kind;         //  bk_lease_kind_t
    int attempt;      //  the request's number
    int worker;       //  worker index or BK_LEASE_ORPHAN
    int64_t deadline; //  mono ms
} s_lease_t;

struct _bk_leases_t {
    bk_worker_t *workers; //  slots, reused when free
    int nworkers;         //  slots in use (alive or not)
    int next;             //  round-robin position
    s_lease_t *leases;    //  active leases
    size_t nleases, cap;  //  count and capacity
};

bk_leases_t *bk_leases_new (void) {
    bk_leases_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void bk_leases_destroy (bk_leases_t **self_p) {
    bk_leases_t *self = *self_p;
    if (self) {
        free (self->workers);
        free (self->leases);
        free (self);
        *self_p = NULL;
    }
}

int bk_leases_worker (bk_leases_t *self, void *socket, const void *rid, size_t rid_size,
                      bool create) {
    int free_slot = -1;
    for (int i = 0; i < self->nworkers; i++) {
        bk_worker_t *w = &self->workers[i];
        if (w->alive && w->socket == socket && w->rid_size == rid_size &&
            memcmp (w->rid, rid, rid_size) == 0)
            return i;
        if (!w->alive && free_slot < 0)
            free_slot = i;
    }
    if (!create || rid_size > BK_LEASE_RID)
        return -1;
    if (free_slot < 0) {
        self->workers =
            realloc (self->workers, (size_t) (self->nworkers + 1) * sizeof *self->workers);
        assert (self->workers);
        free_slot = self->nworkers++;
    }
    bk_worker_t *w = &self->workers[free_slot];
    memset (w, 0, sizeof *w);
    w->socket = socket;
    memcpy (w->rid, rid, rid_size);
    w->rid_size = rid_size;
    w->alive = true;
    return free_slot;
}

bk_worker_t *bk_leases_worker_at (bk_leases_t *self, int index) {
    if (index < 0 || index >= self->nworkers || !self->workers[index].alive)
        return NULL;
    return &self->workers[index];
}

int bk_leases_worker_count (bk_leases_t *self) {
    return self->nworkers;
}

int bk_leases_workers_alive (bk_leases_t *self) {
    int alive = 0;
    for (int i = 0; i < self->nworkers; i++)
        alive += self->workers[i].alive;
    return alive;
}

int bk_leases_next_worker (bk_leases_t *self) {
    for (int n = 0; n < self->nworkers; n++) {
        int i = (self->next + n) % self->nworkers;
        if (self->workers[i].alive && self->workers[i].credit > 0) {
            self->next = (i + 1) % self->nworkers;
            return i;
        }
    }
    return -1;
}

void bk_leases_worker_remove (bk_leases_t *self, int index) {
    if (!bk_leases_worker_at (self, index))
        return;
    self->workers[index].alive = false;
    for (size_t i = 0; i < self->nleases; i++)
        if (self->leases[i].worker == index) {
            self->leases[i].worker = BK_LEASE_ORPHAN;
            self->leases[i].deadline = 0;
        }
}

void bk_leases_add (bk_leases_t *self, int worker, const uint8_t id[16], int kind, int attempt,
                    int64_t deadline) {
    if (self->nleases == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->leases = realloc (self->leases, self->cap * sizeof *self->leases);
        assert (self->leases);
    }
    s_lease_t *lease = &self->leases[self->nleases++];
    memcpy (lease->id, id, 16);
    lease->kind = kind;
    lease->attempt = attempt;
    lease->worker = worker;
    lease->deadline = deadline;
    bk_worker_t *w = bk_leases_worker_at (self, worker);
    if (w)
        w->credit--;
}

static void s_remove (bk_leases_t *self, size_t i) {
    bk_worker_t *w = bk_leases_worker_at (self, self->leases[i].worker);
    if (w)
        w->credit++;
    self->leases[i] = self->leases[--self->nleases];
}

//  The index of the lease id/kind/attempt, or -1.
static ssize_t s_find (bk_leases_t *self, const uint8_t id[16], int kind, int attempt) {
    for (size_t i = 0; i < self->nleases; i++)
        if (self->leases[i].attempt == attempt && self->leases[i].kind == kind &&
            memcmp (self->leases[i].id, id, 16) == 0)
            return (ssize_t) i;
    return -1;
}

int bk_leases_holder (bk_leases_t *self, const uint8_t id[16], int kind, int attempt) {
    ssize_t i = s_find (self, id, kind, attempt);
    return i < 0 ? BK_LEASE_NONE : self->leases[i].worker;
}

bool bk_leases_end (bk_leases_t *self, const uint8_t id[16], int kind, int attempt) {
    ssize_t i = s_find (self, id, kind, attempt);
    if (i < 0)
        return false;
    s_remove (self, (size_t) i);
    return true;
}

bool bk_leases_expired (bk_leases_t *self, int64_t now, uint8_t id[16], int *kind, int *attempt) {
    for (size_t i = 0; i < self->nleases; i++)
        if (self->leases[i].deadline <= now) {
            memcpy (id, self->leases[i].id, 16);
            *kind = self->leases[i].kind;
            *attempt = self->leases[i].attempt;
            s_remove (self, i);
            return true;
        }
    return false;
}

int64_t bk_leases_next_deadline (bk_leases_t *self) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->nleases; i++)
        if (self->leases[i].deadline < next)
            next = self->leases[i].deadline;
    return next;
}

size_t bk_leases_count (bk_leases_t *self) {
    return self->nleases;
}

void bk_lease_test (bool verbose) {
    bk_leases_t *leases = bk_leases_new ();
    int a = bk_leases_worker (leases, NULL, "A", 1, true);
    int b = bk_leases_worker (leases, NULL, "B", 1, true);
    assert (a == 0 && b == 1 && bk_leases_worker (leases, NULL, "A", 1, false) == a);
    assert (bk_leases_worker (leases, NULL, "C", 1, false) == -1);
    int dummy; //  the same routing id on another socket is another worker
    assert (bk_leases_worker (leases, &dummy, "A", 1, false) == -1);
    assert (bk_leases_next_worker (leases) == -1); //  no credit yet
    bk_leases_worker_at (leases, a)->credit = 1;
    bk_leases_worker_at (leases, b)->credit = 2;
    uint8_t t1[16] = {1}, t2[16] = {2}, t3[16] = {3}, id[16];
    int kind, attempt;
    int w = bk_leases_next_worker (leases);
    bk_leases_add (leases, w, t1, BK_LEASE_CALL, 1, 1000);
    w = bk_leases_next_worker (leases);
    bk_leases_add (leases, w, t2, BK_LEASE_CALL, 1, 2000);
    w = bk_leases_next_worker (leases);
    bk_leases_add (leases, w, t3, BK_LEASE_CALL, 1, 3000);
    assert (bk_leases_next_worker (leases) == -1); //  all credit used
    assert (bk_leases_count (leases) == 3 && bk_leases_next_deadline (leases) == 1000);
    assert (bk_leases_holder (leases, t1, BK_LEASE_CALL, 1) == a &&
            bk_leases_holder (leases, t2, BK_LEASE_CALL, 1) == b);
    assert (bk_leases_holder (leases, t1, BK_LEASE_CALL, 2) == BK_LEASE_NONE);

    assert (bk_leases_end (leases, t1, BK_LEASE_CALL, 1) &&
            !bk_leases_end (leases, t1, BK_LEASE_CALL, 1));
    assert (!bk_leases_end (leases, t2, BK_LEASE_CALL, 2)); //  wrong attempt
    assert (bk_leases_next_worker (leases) >= 0);
    assert (!bk_leases_expired (leases, 1500, id, &kind, &attempt));
    assert (bk_leases_expired (leases, 2000, id, &kind, &attempt) && id[0] == 2 &&
            kind == BK_LEASE_CALL && attempt == 1);

    //  a removed worker's leases expire at once; its slot is reused
    bk_leases_worker_remove (leases, b);
    assert (bk_leases_workers_alive (leases) == 1);
    assert (bk_leases_expired (leases, 0, id, &kind, &attempt) && id[0] == 3);
    assert (bk_leases_count (leases) == 0);
    assert (bk_leases_worker (leases, NULL, "D", 1, true) == b);
    bk_leases_add (leases, BK_LEASE_ORPHAN, t1, BK_LEASE_CALL, 4, 50);
    assert (bk_leases_holder (leases, t1, BK_LEASE_CALL, 4) == BK_LEASE_ORPHAN);
    //  another kind's request of the same number is another lease
    bk_leases_worker_at (leases, b)->credit = 1;
    bk_leases_add (leases, b, t1, BK_LEASE_NOTIFY, 4, 40);
    assert (bk_leases_holder (leases, t1, BK_LEASE_NOTIFY, 4) == b);
    assert (bk_leases_holder (leases, t1, BK_LEASE_POLL, 4) == BK_LEASE_NONE);
    assert (bk_leases_expired (leases, 45, id, &kind, &attempt) && kind == BK_LEASE_NOTIFY);
    assert (bk_leases_worker_at (leases, b)->credit == 1);
    assert (bk_leases_end (leases, t1, BK_LEASE_CALL, 4));
    bk_leases_destroy (&leases);
    assert (!leases);
    if (verbose)
        printf ("bk_lease: ok\n");
}
