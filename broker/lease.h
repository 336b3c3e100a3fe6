/*  lease.h - connected workers, their credit, and the tasks leased to them

    In memory only: after a broker restart every task still `processing` is
    re-leased to nobody (an orphan lease) with a deadline, so a worker that
    finishes it can still report, and otherwise it returns to the queue.
*/
#ifndef BK_LEASE_H
#define BK_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_LEASE_RID    256 //  longest ZeroMQ routing id kept
#define BK_LEASE_ORPHAN -1  //  leased to nobody (the broker restarted)
#define BK_LEASE_NONE   -2  //  no such lease

//  What a lease is for. Each kind numbers its requests on its own (a call's
//  attempt, a poll's seq, a delivery's attempt, 0 for a cancel), so a
//  lease is named by task id, kind and number: a late poll and a delivery
//  of one task may both be out under number 1.
typedef enum { BK_LEASE_CALL, BK_LEASE_POLL, BK_LEASE_NOTIFY, BK_LEASE_CANCEL } bk_lease_kind_t;

typedef struct _bk_leases_t bk_leases_t;

typedef struct {
    void *socket;              //  the worker socket it is connected to
    uint8_t rid[BK_LEASE_RID]; //  routing id on that socket
    size_t rid_size;           //  its length
    int credit;                //  calls it can take now
    int64_t last_seen;         //  mono ms of its last message
    int64_t last_sent;         //  mono ms of our last message to it
    char name[64];             //  as announced in READY
    bool alive;                //  slot in use
} bk_worker_t;

bk_leases_t *bk_leases_new (void);
void bk_leases_destroy (bk_leases_t **self_p);

//  Index of the worker with this routing id on socket, or -1. With create,
//  a new worker (credit 0) is added when unknown.
int bk_leases_worker (bk_leases_t *self, void *socket, const void *rid, size_t rid_size,
                      bool create);
//  The worker at an index (borrowed), or NULL when the slot is free.
bk_worker_t *bk_leases_worker_at (bk_leases_t *self, int index);
int bk_leases_worker_count (bk_leases_t *self);  //  slots, alive or not
int bk_leases_workers_alive (bk_leases_t *self); //  connected workers
//  Next worker with credit, round-robin; -1 if none.
int bk_leases_next_worker (bk_leases_t *self);
//  Forgets a worker; its leases expire at once (their tasks are "worker lost").
void bk_leases_worker_remove (bk_leases_t *self, int index);

//  Leases request attempt of kind (bk_lease_kind_t) for task id to a worker
//  (or BK_LEASE_ORPHAN) until deadline (mono ms), taking one credit from the
//  worker.
void bk_leases_add (bk_leases_t *self, int worker, const uint8_t id[16], int kind, int attempt,
                    int64_t deadline);
//  Who holds the lease of id/kind/attempt: a worker index, BK_LEASE_ORPHAN,
//  or BK_LEASE_NONE.
int bk_leases_holder (bk_leases_t *self, const uint8_t id[16], int kind, int attempt);
//  Ends the lease of id/kind/attempt, returning the credit to its worker.
//  Returns true if such a lease existed.
bool bk_leases_end (bk_leases_t *self, const uint8_t id[16], int kind, int attempt);
//  Removes one lease past its deadline; true and fills id, kind, attempt.
bool bk_leases_expired (bk_leases_t *self, int64_t now, uint8_t id[16], int *kind, int *attempt);
//  Earliest lease deadline, or INT64_MAX.
int64_t bk_leases_next_deadline (bk_leases_t *self);
size_t bk_leases_count (bk_leases_t *self);

void bk_lease_test (bool verbose);

#endif
