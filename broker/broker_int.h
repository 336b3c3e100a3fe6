/*  broker_int.h - the broker's state and helpers, for its own modules only

    broker.c owns the loop and the /v1/tasks engine; scheduler.c (the
    /tasks schedules and their runs) works on the same state inside the
    same turn and transaction through the helpers below. Nothing outside
    broker/ includes this header.
*/
#ifndef BK_BROKER_INT_H
#define BK_BROKER_INT_H

#include "aq_plugin.h"
#include "broker.h"
#include "keys.h"
#include "lease.h"
#include "limits.h"
#include "loader.h"
#include "providers.h"
#include "queue.h"
#include "sockets.h"
#include "store.h"
#include "waiters.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BK_LATENCY_BUCKETS 12                               //  attempt latency histogram buckets
#define BK_REPLY_FAILED    "Storage unavailable, try again" //  a 503 the store caused

typedef struct {
    void *socket;     //  where to send; NULL for an EVENT (every events socket)
    uint8_t rid[256]; //  routing id, rid_size 0 for PUB
    size_t rid_size;  //  its length
    int cmd;          //  command
    json_t *body;     //  owned
    char topic[80];   //  PUB topic frame
} bk_out_t;

struct _bk_broker_t {
    const bk_config_t *cfg;         //  borrowed
    bk_sockets_t *sockets;          //  owned: every socket, plain and CURVE
    void *clients[BK_SOCKETS_MAX];  //  ROUTERs for clients (borrowed from sockets)
    int nclients;                   //  how many
    void *workers[BK_SOCKETS_MAX];  //  ROUTERs for workers
    int nworkers;                   //  how many
    void *events[BK_SOCKETS_MAX];   //  XPUBs: events go out only while someone subscribes
    int nevents;                    //  how many
    int subscribers;                //  valid subscriptions, minus unsubscriptions
    uint8_t events_key[32];         //  keys each team's events topic (META "events-key")
    bk_store_t *store;              //  owned
    bk_queue_t *queue;              //  owned
    bk_leases_t *leases;            //  owned
    bk_waiters_t *waiters;          //  owned
    bk_limits_t *limits;            //  owned
    json_t *teams;                  //  team id -> team record, a cache of BK_DB_TEAMS
    json_t *keys;                   //  key id -> key record, a cache of BK_DB_KEYS
    aq_plugin_loader_t *plugins;    //  owned: providers and the vault
    const aq_plugin_vault_t *vault; //  borrowed from plugins, NULL if none
    bk_providers_t *providers;      //  owned: the provider hosts running provider ops
    bk_out_t *out;                  //  sends waiting for the commit
    size_t nout, capout;            //  count, capacity
    uint64_t seq;                   //  last creation sequence used
    uint64_t stored_seq;            //  the one in the store's meta
    int64_t next_due;               //  earliest delay-queue time (wall ms), INT64_MAX if none
    char admin[65];                 //  admin token
    int64_t now;                    //  wall ms of this turn
    int64_t mono;                   //  mono ms of this turn
    int64_t last_reader_check;      //  mono ms
    int64_t last_release;           //  mono ms of the last bk_store_release_pages
    bool recover;                   //  re-lease processing tasks at the next turn
    struct {
        uint64_t created, dispatched, completed, failed, retried, malformed, lost, dropped;
        uint64_t refused_results; //  results from a worker that does not hold the lease
        uint64_t latency[BK_LATENCY_BUCKETS];
        uint64_t latency_sum_ms;
    } stats;
};

typedef struct _bk_broker_t bk_broker_t;

typedef struct {
    void *socket;       //  the client socket it came in on
    const uint8_t *rid; //  routing id of the client
    size_t rid_size;    //  its length
    int64_t corr;       //  correlation id
    json_t *body;       //  request fields, borrowed
    uint8_t team[16];   //  the caller's team, after auth
} bk_req_t;

//  Queues the REPLY to a request (sent after the commit); takes body.
void bk_broker_answer (bk_broker_t *self, bk_req_t *req, int status, json_t *body,
                       const char *error);

//  The record (a task, a scheduled task) named by req's "id" if it is the
//  caller's team's, its id in id; or NULL after answering 404 "Task not
//  found". get and ids are the record kind's lookup and id reader. New
//  reference.
typedef json_t *(bk_record_get_fn) (bk_store_t *store, const uint8_t id[16]);
typedef int (bk_record_ids_fn) (const json_t *record, uint8_t id[16], uint8_t team[16]);
json_t *bk_broker_own (bk_broker_t *self, bk_req_t *req, uint8_t id[16], bk_record_get_fn *get,
                       bk_record_ids_fn *ids);

//  Answers a page of a list: {name: [public (record)...], "pagination":
//  {"total", "limit", "offset", has_more, "hasMore"}} (has_more is the flag's
//  name: "hasMore" in /v1, "has_more", deprecated, in /tasks, where
//  "hasMore" follows it). Takes records.
typedef json_t *(bk_record_public_fn) (const json_t *record);
void bk_broker_answer_page (bk_broker_t *self, bk_req_t *req, const char *name, json_t *records,
                            bk_record_public_fn *public, const char *has_more, uint64_t total,
                            int64_t limit, int64_t offset);

//  Puts an item in the delay queue and wakes the loop in time for it.
int bk_broker_timer (bk_broker_t *self, int64_t due, int kind, const uint8_t id[16]);

//  A /v1/tasks task from a POST /v1/tasks body, checked as that endpoint
//  checks it (fields, tokens of the team, provider): a new record with its
//  id and team, not yet stored, or NULL with the API error in errbuf.
json_t *bk_broker_task_build (bk_broker_t *self, const uint8_t team[16], const json_t *request,
                              char *errbuf, size_t size);
//  Queues a built task (ready or delayed) and stores it. 0 or a store error.
int bk_broker_task_insert (bk_broker_t *self, json_t *task);

//  A query value given as an integer or a decimal string; dflt when
//  absent, -1 when invalid.
int64_t bk_broker_query_int (const json_t *value, int64_t dflt);

#endif
