/*  aq_actor.h - a component (broker, gateway, worker) as a czmq zactor

    Every program runs its components as zactors: the all-in-one asyncqueue
    starts a broker, workers and a gateway in one process, aq-broker,
    aq-gateway and aq-worker one each. The component's loop polls its
    pipe (aq_actor_socket) beside its own sockets and reads a command when
    it is readable (aq_actor_command):

        $TERM   stop (zactor_destroy sends it): finish what is in hand
        STOP    the same, from aq_actor_stop, which then waits for the end
        HURRY   stop now, abandoning work in hand (a second stop signal)

    A component says READY once it serves (aq_actor_ready); the starter
    waits for that, or for the component's failure to start. A component
    that stops other than by a command (its store failed) says FAILED, so
    the program can end.
*/
#ifndef AQ_ACTOR_H
#define AQ_ACTOR_H

#include <czmq.h>
#include <stdbool.h>

//  The component's side of its pipe.
typedef struct _aq_actor_t aq_actor_t;

//  A component's loop: cfg is its own config type. Returns 0 when it
//  stopped on a command, -1 when it could not start or failed.
typedef int (aq_actor_fn) (const void *cfg, aq_actor_t *actor);

//  Stop levels (aq_actor_level).
#define AQ_ACTOR_RUN   0 //  serving
#define AQ_ACTOR_STOP  1 //  finish what is in hand, then return
#define AQ_ACTOR_HURRY 2 //  return now

//  ---- the program's side --------------------------------------------------

//  Starts run (cfg) in a new zactor with the process's ZeroMQ context
//  (zsys_init); returns once it said READY, or NULL (joined) when it
//  could not start. name is the thread's name (15 characters at most).
zactor_t *aq_actor_start (const char *name, aq_actor_fn *run, const void *cfg);

//  Stops an actor and destroys it: STOP, then HURRY when a signal arrives
//  on sigfd (a signalfd, or -1) before it ends. hurry (NULL: none) says a
//  stop before was hurried, so this one is too, and is set when a signal
//  hurries this one. Returns 0, or -1 when it ended by failing.
int aq_actor_stop (zactor_t **self_p, int sigfd, bool *hurry);

//  Waits until a signal arrives on sigfd or one of the n actors says
//  FAILED. Returns 0 for a signal, -1 for a failure.
int aq_actor_wait (zactor_t **actors, int n, int sigfd);

//  ---- the component's side ------------------------------------------------

//  The process's ZeroMQ context, for the component's sockets.
void *aq_actor_ctx (aq_actor_t *self);
//  The pipe as a libzmq socket, for the component's zmq_poll.
void *aq_actor_socket (aq_actor_t *self);
//  Tells the starter the component serves.
void aq_actor_ready (aq_actor_t *self);
//  Reads the commands waiting on the pipe; returns the stop level.
int aq_actor_command (aq_actor_t *self);
//  The stop level the commands read so far asked for.
int aq_actor_level (const aq_actor_t *self);

void aq_actor_test (bool verbose);

#endif
