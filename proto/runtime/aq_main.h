/*  aq_main.h - running components as a foreground program */
#ifndef AQ_MAIN_H
#define AQ_MAIN_H

#include "aq_actor.h"

#include <signal.h>

//  Runs one component (run with cfg) as an actor until SIGINT or SIGTERM:
//  the first signal stops it (it finishes what is in hand), a second one
//  hurries it. Returns the exit code: 0 after a clean stop, 1 when the
//  component could not start or failed (it logged why).
int aq_main_run (const char *program, aq_actor_fn *run, const void *cfg);

//  For a program that waits for its stop signal itself: blocks SIGINT and
//  SIGTERM in this thread and in the threads it starts after (call it
//  first), fills signals with the two, ignores SIGPIPE, and keeps czmq's
//  own handler out.
void aq_main_block_signals (sigset_t *signals);

//  The same, and a signalfd (close-on-exec) that reads the two, for
//  aq_actor_wait and aq_actor_stop; -1 if none could be made.
int aq_main_signalfd (void);

#endif
