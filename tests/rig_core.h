/*  rig_core.h - test rig: the broker's task modules wired as the loop wires them, no loop

    For selftests only: linked into aq-selftest, never into a component
    library. A test store, an outbox, the engine, teams and keys, the
    provider hosts (never started: ops only queue), dispatch, results, the
    scheduler and the handlers, over inproc sockets in zsys_init ()'s
    context: a clients ROUTER with one client DEALER, a workers ROUTER with
    fake workers (DEALERs that take JOBs and send RESULTs) and an events
    PUB with a SUB that hears every team's events. The clock is the rig's
    own (rig_core_advance), so every deadline is exact.

        rig_core_t *rig = rig_core_new ("engine", true);
        rig_worker_t *worker = rig_core_worker (rig, NULL, 10);
        char id[AQ_UUID_TEXT];
        rig_core_created (rig, "{\"targetUrl\": \"http://t/\"}", id); //  a turn: dispatched
        rig_worker_expect (worker, id, "");                            //  its JOB came
        rig_worker_answer (worker, "{\"statusCode\": 200}");           //  and a turn
        const bk_task_t *task = rig_core_is (rig, id, BK_ST_COMPLETED);
        rig_core_expect_events (rig, id, "pending processing completed");
        rig_worker_bye (worker);
        rig_core_destroy (&rig);

    Every turn commits the store and begins the next write transaction, as
    the loop does. Failures (a socket, a frame that does not decode, a store
    whose indexes disagree with its records) assert.
*/
#ifndef RIG_CORE_H
#define RIG_CORE_H

#include "../broker/dispatch.h"
#include "../broker/engine.h"
#include "../broker/handlers.h"
#include "../broker/keys.h"
#include "../broker/providers.h"
#include "../broker/results.h"
#include "../broker/sched/scheduler.h"
#include "aq_uuid.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RIG_CORE_NOW   1705314600000LL //  the rig's wall clock at start: 2024-01-15T10:30:00Z
#define RIG_CORE_ADMIN "rig-admin-token-0123456789abcdef" //  the handlers' admin token

typedef struct _rig_worker_t rig_worker_t;

typedef struct {
    bk_config_t cfg;                //  defaults; the modules read it as they go
    char dir[BK_STORE_TEST_DIR];    //  the store's (and the vault's) directory
    bk_store_t *store;              //  in a write transaction between turns
    aq_plugin_loader_t *plugins;    //  the build's plugins (providers described only), or NULL
    const aq_plugin_vault_t *vault; //  vault-sodium when plugins were loaded
    bk_outbox_t *outbox;            //  the events PUB is its one events socket
    bk_engine_t *engine;            //  as loop.c makes them
    bk_keys_t *keys;                //  teams and keys
    bk_providers_t *providers;      //  never started: ops only queue
    bk_dispatch_t *dispatch;        //  workers and leases
    bk_results_t *results;          //  RESULTs
    bk_scheduler_t *scheduler;      //  scheduled tasks
    bk_handlers_t *handlers;        //  client commands
    int64_t now, mono;              //  the rig's clock (wall and monotonic ms)
    void *clients, *workers, *pub;  //  the broker's sockets
    void *client, *sub;             //  the client's DEALER, the events SUB
    uint8_t team[16];               //  team "acme"
    char key[BK_KEY_TEXT];          //  its full-scope key
    char read_key[BK_KEY_TEXT];     //  its read-scope key
    char other_key[BK_KEY_TEXT];    //  a full key of team "globex"
    char workers_endpoint[128];     //  where fake workers connect
    int64_t corr;                   //  the last request's
    int64_t answer_corr;            //  the last answer's, -1 none
    int status;                     //  the last answer's status (an ERROR's code), -1 none
    char error[512];                //  its error ("" when none)
    char *json;                     //  its body as JSON text ("" when none)
    uint8_t *frame;                 //  the last answer's frame
    aq_node_t body;                 //  its body (nil when none)
    char events[1024];              //  rig_core_events' answer
    int64_t retry_after;            //  the last answer's retryAfter, -1 none
    rig_worker_t *workers_list;     //  the fake workers, owned
    void *seen;                     //  statuses seen per task (events)
    bk_task_t *looked;              //  rig_core_is' task
    int named;                      //  workers named by the rig so far
    bool transitions[BK_ST_COUNT][BK_ST_COUNT]; //  [from][to] seen in events (from 0: created)
} rig_core_t;

//  A new rig; name makes its inproc endpoints unique. With plugins, the
//  build's plugin directory is loaded (providers described only, as the
//  broker does) and must hold the vault and the fal provider.
rig_core_t *rig_core_new (const char *name, bool plugins);
//  Closes the workers and sockets, destroys the modules, removes the store.
void rig_core_destroy (rig_core_t **self_p);

//  Moves both clocks on by ms (no turn).
void rig_core_advance (rig_core_t *self, int64_t ms);
//  One turn of the loop at the rig's clock: every live worker heartbeats,
//  then what waits on the workers and clients sockets is handled, due
//  timers promoted, workers and leases expired, ready tasks dispatched,
//  heartbeats sent; the store commits and the outbox is flushed.
void rig_core_turn (rig_core_t *self);
//  The broker restarts over the same store: every module is made anew
//  (workers forgotten, as the loop's s_start does: recovery of processing
//  tasks and provider ops sent again); the fake workers stay connected.
void rig_core_restart (rig_core_t *self);

//  ---- a client ----------------------------------------------------------

//  Sends cmd with the fields of a JSON object (printf format; a "corr" is
//  added) from the client and runs a turn; returns the answer's status
//  (also in status, with error, json and body), -1 when none came.
int rig_core_call (rig_core_t *self, int cmd, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Sends as rig_core_call does, without a turn or an answer; returns the
//  request's corr.
int64_t rig_core_send (rig_core_t *self, int cmd, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Reads an answer already sent (after a turn): its status, -1 when none.
int rig_core_answer (rig_core_t *self);
//  POST /v1/tasks with the body task (JSON) and the team's key: the new
//  task's id into id; returns the status (201, or the error's).
int rig_core_create (rig_core_t *self, const char *task, char id[AQ_UUID_TEXT]);
//  The answer's body holds text (a piece of its JSON); says what it holds
//  when not.
bool rig_core_shows (rig_core_t *self, const char *text);

//  Every status event of task id published since the last call, in order,
//  as "pending processing completed" (borrowed until the next call; ""
//  when none). Events of other tasks are kept for their own call.
const char *rig_core_events (rig_core_t *self, const char *id);

//  ---- the store -----------------------------------------------------------

//  Task id as stored (caller destroys), NULL when absent. Asserts that its
//  indexes agree with it (one team-status entry under its status and seq,
//  its team-tasks entry) and that every counter of its team and of all
//  teams matches the index entries.
bk_task_t *rig_core_task (rig_core_t *self, const char *id);
//  True when the ready queue holds task id.
bool rig_core_ready (rig_core_t *self, const char *id);
//  True when the delay queue holds an item of kind (BK_DELAY_*) for task
//  id due at due (any time: -1). A task may have stale items too (a
//  watchdog its answer made moot): the engine skips those when they fall due.
bool rig_core_timer (rig_core_t *self, int kind, const char *id, int64_t due);

//  ---- what the selftests assert --------------------------------------------

//  The stored task, which must be in status (checked as rig_core_task
//  checks it): borrowed until the next call.
const bk_task_t *rig_core_is (rig_core_t *self, const char *id, int status);
//  The task's events since the last look (rig_core_events) are want.
void rig_core_expect_events (rig_core_t *self, const char *id, const char *want);
//  POST /v1/tasks with the body task (JSON), which must be accepted: the
//  new task's id into id.
void rig_core_created (rig_core_t *self, const char *task, char id[AQ_UUID_TEXT]);
//  GET /v1/tasks/:id as the team: its body must show text.
void rig_core_get_shows (rig_core_t *self, const char *id, const char *text);
//  Moves the clock on by ms and runs a turn.
void rig_core_later (rig_core_t *self, int64_t ms);
//  The op a provider task waits for, answered by its provider host: reply
//  (JSON), or failure (reply NULL); a turn runs.
void rig_core_provider_reply (rig_core_t *self, const char *id, const char *reply,
                              const char *failure);

//  ---- fake workers --------------------------------------------------------

struct _rig_worker_t {
    rig_core_t *rig;       //  its rig
    void *dealer;          //  its socket, NULL once closed
    char name[32];         //  its routing id and READY name
    bool silent;           //  sends no heartbeats
    uint8_t *frame;        //  the last JOB's frame
    aq_node_t job;         //  its body
    char id[AQ_UUID_TEXT]; //  its id, attempt, kind ("" for a call) and lease ("" none)
    int attempt;
    char kind[16];
    char lease[64];
    int heartbeats;     //  HEARTBEATs received
    int errors;         //  ERRORs received
    int last_error;     //  the last one's code
    char reason[128];   //  and reason
    rig_worker_t *next; //  in the rig's list
};

//  A worker that connects with routing id name (NULL: "w1", "w2"...) and
//  says READY with credit; a turn runs, so it is known when this returns
//  (and it may have been sent a JOB).
rig_worker_t *rig_core_worker (rig_core_t *self, const char *name, int credit);
//  Sends cmd with the fields of json (NULL: none). No turn.
void rig_worker_send (rig_worker_t *self, int cmd, const char *json);
//  The next JOB it was sent (HEARTBEATs and ERRORs counted on the way),
//  into job, id, attempt, kind and lease; false when none is waiting.
bool rig_worker_job (rig_worker_t *self);
//  A RESULT for the last JOB: its id, attempt, kind and lease echoed as a
//  worker does, and the fields of json (a JSON object), which may override
//  them. No turn.
void rig_worker_result (rig_worker_t *self, const char *json);
//  The JOB's field as text into buf ("" when absent or not a string);
//  returns buf. path may name a header: "headers.Authorization".
char *rig_worker_field (rig_worker_t *self, const char *path, char *buf, size_t size);
//  Drains what the worker was sent; returns how many JOBs were among it.
int rig_worker_drain (rig_worker_t *self);
//  The worker's next JOB is of kind ("" for the call) for task id.
void rig_worker_expect (rig_worker_t *self, const char *id, const char *kind);
//  rig_worker_result, then a turn.
void rig_worker_answer (rig_worker_t *self, const char *json);
//  The worker goes away without a word: its socket closes.
void rig_worker_vanish (rig_worker_t *self);
//  The worker leaves as a worker stopping does: BYE, a turn, then its
//  socket closes.
void rig_worker_bye (rig_worker_t *self);

#endif
