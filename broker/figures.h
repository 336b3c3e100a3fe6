/*  figures.h - STATS: a team's figures and the whole broker's, and the
    long polls of GET /v1/stats?wait

    A team key sees its team only: its tasks by status and the tasks it
    created (the store's counters); the console's view (GET /v1/stats) adds
    the workers connected, the last hour minute by minute and the count of
    status changes a long poll compares (minutes.h). The admin token sees
    the whole broker. Every figure is a counter: nothing scans the store.
*/
#ifndef BK_FIGURES_H
#define BK_FIGURES_H

#include "dispatch.h"
#include "engine.h"
#include "request.h"
#include "sockets.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_figures_t bk_figures_t;

//  Over the engine's store and counters, the dispatcher's workers and the
//  sockets' refusals (sockets may be NULL); all borrowed.
bk_figures_t *bk_figures_new (bk_engine_t *engine, bk_dispatch_t *dispatch, bk_sockets_t *sockets);
void bk_figures_destroy (bk_figures_t **self_p);

//  Appends team's figures (a map) to w; console adds workers, minutes and
//  changes.
void bk_figures_team (bk_figures_t *self, aq_writer_t *w, const uint8_t team[16], bool console);
//  Appends the whole broker's figures (a map) to w.
void bk_figures_global (bk_figures_t *self, aq_writer_t *w);

//  Holds an authenticated console request with "wait" (1..25) and "since"
//  equal to the team's changes count now: true when held (bk_figures_tick
//  answers it); false when it is to be answered at once.
bool bk_figures_hold (bk_figures_t *self, bk_req_t *req);
//  Answers the held requests whose team's tasks changed, or whose time is
//  up; once a turn, before the commit (the answers go out with it).
void bk_figures_tick (bk_figures_t *self);
//  The earliest deadline of a held request (mono ms), INT64_MAX if none.
int64_t bk_figures_next_deadline (bk_figures_t *self);

void bk_figures_test (bool verbose);

#endif
