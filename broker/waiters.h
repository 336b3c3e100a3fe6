/*  waiters.h - held TASK_GET ?wait requests (long polls)

    A waiter is answered when its task changes status, or at its deadline.
    An index by task id makes "does anyone wait for this task" O(1), so
    status changes cost nothing when nobody waits.
*/
#ifndef BK_WAITERS_H
#define BK_WAITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bk_waiters_t bk_waiters_t;

typedef struct {
    void *socket;     //  the client socket the request came in on
    uint8_t rid[256]; //  routing id of the client
    size_t rid_size;  //  its length
    int64_t corr;     //  correlation id of the request
    char id[40];      //  task id text
    int64_t deadline; //  mono ms
} bk_waiter_t;

bk_waiters_t *bk_waiters_new (void);
void bk_waiters_destroy (bk_waiters_t **self_p);

//  Holds a request from socket; false when rid is too long.
bool bk_waiters_add (bk_waiters_t *self, void *socket, const void *rid, size_t rid_size,
                     int64_t corr, const char *id, int64_t deadline);
bool bk_waiters_has (bk_waiters_t *self, const char *id);
//  Removes one waiter for task id into *out; false when none is left.
bool bk_waiters_take (bk_waiters_t *self, const char *id, bk_waiter_t *out);
//  Removes every waiter past its deadline, returning them as an array the
//  caller frees (NULL when none) and their number in *count. One pass, and
//  none at all before the earliest deadline.
bk_waiter_t *bk_waiters_expire (bk_waiters_t *self, int64_t now, size_t *count);
//  A time no later than the earliest deadline (INT64_MAX when empty).
int64_t bk_waiters_next_deadline (bk_waiters_t *self);
size_t bk_waiters_count (bk_waiters_t *self);

void bk_waiters_test (bool verbose);

#endif
