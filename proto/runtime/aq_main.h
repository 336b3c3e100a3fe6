/*  aq_main.h - running one component as a foreground program */
#ifndef AQ_MAIN_H
#define AQ_MAIN_H

#include <signal.h>
#include <stdatomic.h>

//  A component's run function: cfg is its own config type.
typedef int (*aq_main_fn) (const void *cfg, void *zmq_ctx, const atomic_int *stop);

//  Runs run (cfg) until SIGINT or SIGTERM: each signal adds one to the stop
//  flag (no SA_RESTART, so a blocked poll wakes), SIGPIPE is ignored, and one
//  ZeroMQ context lives for the run. Returns the exit code: 0 after a clean
//  stop, 1 when the component or the context could not start (one line on
//  stderr, prefixed with program).
int aq_main_run (const char *program, aq_main_fn run, const void *cfg);

//  For a program that waits for its stop signal itself (sigwait,
//  sigtimedwait): blocks SIGINT and SIGTERM in this thread and in the
//  threads it starts after, fills signals with the two, ignores SIGPIPE.
void aq_main_block_signals (sigset_t *signals);

#endif
