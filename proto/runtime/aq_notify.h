/*  aq_notify.h - telling systemd how the program is: READY, STOPPING, WATCHDOG

    Under systemd with Type=notify (NOTIFY_SOCKET set), a program says
    READY=1 once it serves, STOPPING=1 when it begins to stop, and
    WATCHDOG=1 every half WatchdogSec (WATCHDOG_USEC) while the loops that
    matter turn: a loop that stalls stops the petting, and systemd restarts
    the service. Without NOTIFY_SOCKET every call does nothing and the
    program is a plain foreground one. Every function may be called from
    any thread. The only file that includes <systemd/sd-daemon.h>.

        aq_notify_ready ("broker");          //  store open, log replayed, bound
        int loop = aq_notify_loop_new ("broker");
        while (!stop) { aq_notify_loop_turn (loop); ... }
        aq_notify_stopping ();
        aq_notify_loop_end (loop);
*/
#ifndef AQ_NOTIFY_H
#define AQ_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#define AQ_NOTIFY_LOOPS 128 //  loops watched at once

//  READY=1 waits until this many parts have called aq_notify_ready (1 by
//  default): the all-in-one expects its broker, gateway and each worker.
//  Call before any part starts.
void aq_notify_expect (int parts);

//  One part is up: STATUS= says which; READY=1 goes with the last one.
void aq_notify_ready (const char *part);

//  STOPPING=1, once per process; no WATCHDOG=1 after it.
void aq_notify_stopping (void);

//  Registers a loop the watchdog waits on. Returns its handle, or -1 when
//  AQ_NOTIFY_LOOPS are watched already (that loop is then not watched).
int aq_notify_loop_new (const char *name);

//  The loop turned. WATCHDOG=1 goes when READY=1 has gone and STOPPING=1
//  has not, half the watchdog interval has passed since the last one, and
//  every watched loop turned within half an interval; a loop late by more
//  logs one warning naming it. A handle of -1 is ignored.
void aq_notify_loop_turn (int loop);

//  The loop ended: it is no longer waited on. -1 is ignored.
void aq_notify_loop_end (int loop);

//  The watchdog interval in microseconds, 0 when there is none.
uint64_t aq_notify_watchdog_usec (void);

void aq_notify_test (bool verbose);

#endif
