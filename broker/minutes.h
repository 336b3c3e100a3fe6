/*  minutes.h - per-team counts of tasks created, completed and failed,
    minute by minute over the last hour, and of status changes

    In memory only: the console's chart (GET /v1/stats) starts empty after
    a restart. A team's ring has 60 slots, one per wall-clock minute; a
    slot older than an hour is reused, so memory is a fixed 1.5 KiB a team
    that had activity since the broker started.
*/
#ifndef BK_MINUTES_H
#define BK_MINUTES_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stdint.h>

#define BK_MINUTES 60 //  slots: the last hour

typedef enum {
    BK_MINUTE_CREATED,
    BK_MINUTE_COMPLETED,
    BK_MINUTE_FAILED,
    BK_MINUTE_KINDS
} bk_minute_kind_t;

typedef struct _bk_minutes_t bk_minutes_t;

bk_minutes_t *bk_minutes_new (void);
void bk_minutes_destroy (bk_minutes_t **self_p);

//  Counts one event of kind for team at wall time now (ms).
void bk_minutes_add (bk_minutes_t *self, const uint8_t team[16], int kind, int64_t now);

//  Counts a status change of one of team's tasks (a creation too).
void bk_minutes_touch (bk_minutes_t *self, const uint8_t team[16]);

//  The status changes of team's tasks since the broker started: what a
//  long poll of GET /v1/stats?since= compares.
uint64_t bk_minutes_changes (bk_minutes_t *self, const uint8_t team[16]);

//  Appends to w an array of BK_MINUTES maps, oldest first, the last one
//  the current minute: {"at": minute start (ms), "created", "completed",
//  "failed"}; minutes without activity count 0.
void bk_minutes_write (bk_minutes_t *self, const uint8_t team[16], int64_t now, aq_writer_t *w);

void bk_minutes_test (bool verbose);

#endif
