/*  figures.c - STATS: a team's figures and the whole broker's, and the long polls of GET /v1/stats
 */
#include "figures.h"
#include "aq_proto.h"
#include "lease.h"
#include "tasks.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_WAIT_S 25 //  as GET /v1/tasks/:id?wait

//  A GET /v1/stats?wait held until the team's tasks change.
typedef struct {
    void *socket;     //  the client socket it came in on
    uint8_t rid[256]; //  routing id of the client
    size_t rid_size;  //  its length
    int64_t corr;     //  correlation id
    uint8_t team[16]; //  whose figures
    uint64_t since;   //  the changes count the client has seen
    int64_t deadline; //  mono ms to answer by anyway
} s_held_t;

struct _bk_figures_t {
    bk_engine_t *engine;     //  borrowed: store, counters, clock, outbox
    bk_dispatch_t *dispatch; //  borrowed: workers
    bk_sockets_t *sockets;   //  borrowed, may be NULL: refused connections
    s_held_t *held;          //  held requests, in arrival order
    size_t count;            //  how many
    size_t cap;              //  allocated
};

bk_figures_t *bk_figures_new (bk_engine_t *engine, bk_dispatch_t *dispatch, bk_sockets_t *sockets) {
    bk_figures_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    self->dispatch = dispatch;
    self->sockets = sockets;
    return self;
}

void bk_figures_destroy (bk_figures_t **self_p) {
    assert (self_p);
    bk_figures_t *self = *self_p;
    if (!self)
        return;
    free (self->held);
    free (self);
    *self_p = NULL;
}

static void s_tasks_by_status (aq_writer_t *w, bk_store_t *store, const uint8_t *team) {
    aq_write_str (w, "tasks");
    aq_write_map (w, BK_ST_COUNT - 1);
    for (int st = 1; st < BK_ST_COUNT; st++)
        aq_write_kv_int (w, bk_status_name (st), (int64_t) bk_tasks_count (store, team, st));
}

static int64_t s_workers (bk_figures_t *self) {
    return self->dispatch ? bk_leases_workers_alive (bk_dispatch_leases (self->dispatch)) : 0;
}

void bk_figures_team (bk_figures_t *self, aq_writer_t *w, const uint8_t team[16], bool console) {
    bk_engine_t *engine = self->engine;
    aq_write_map (w, console ? 6 : 3);
    aq_write_kv_str (w, "scope", "team");
    s_tasks_by_status (w, engine->store, team);
    aq_write_str (w, "counters");
    aq_write_map (w, 1);
    aq_write_kv_int (w, "created", (int64_t) bk_tasks_count (engine->store, team, 0));
    if (console) { //  the workers serve every team, so their number is no secret
        aq_write_kv_int (w, "workers", s_workers (self));
        aq_write_str (w, "minutes");
        bk_minutes_write (engine->minutes, team, engine->now, w);
        aq_write_str (w, "changes");
        aq_write_uint (w, bk_minutes_changes (engine->minutes, team));
    }
}

void bk_figures_global (bk_figures_t *self, aq_writer_t *w) {
    static const char *const le[BK_LATENCY_BUCKETS] = {
        "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf"};
    bk_engine_t *engine = self->engine;
    const bk_stats_t *stats = &engine->stats;
    aq_write_map (w, 7);
    aq_write_kv_str (w, "scope", "global");
    s_tasks_by_status (w, engine->store, NULL);
    aq_write_str (w, "counters");
    aq_write_map (w, 9);
    aq_write_kv_int (w, "created", (int64_t) stats->created);
    aq_write_kv_int (w, "dispatched", (int64_t) stats->dispatched);
    aq_write_kv_int (w, "completed", (int64_t) stats->completed);
    aq_write_kv_int (w, "failed", (int64_t) stats->failed);
    aq_write_kv_int (w, "retried", (int64_t) stats->retried);
    aq_write_kv_int (w, "malformed", (int64_t) stats->malformed);
    aq_write_kv_int (w, "workerLost", (int64_t) stats->lost);
    aq_write_kv_int (w, "refusedConnections",
                     (int64_t) (self->sockets ? bk_sockets_refused (self->sockets) : 0));
    aq_write_kv_int (w, "refusedResults", (int64_t) stats->refused_results);
    aq_write_kv_int (w, "workers", s_workers (self));
    aq_write_kv_int (w, "lmdbBytes", bk_store_used_bytes (engine->store));
    aq_write_str (w, "attemptLatencyMs");
    aq_write_map (w, BK_LATENCY_BUCKETS);
    uint64_t cumulative = 0;
    for (int i = 0; i < BK_LATENCY_BUCKETS; i++) {
        cumulative += stats->latency[i];
        aq_write_kv_int (w, le[i], (int64_t) cumulative);
    }
    aq_write_kv_int (w, "attemptLatencySumMs", (int64_t) stats->latency_sum_ms);
}

bool bk_figures_hold (bk_figures_t *self, bk_req_t *req) {
    aq_node_t wait;
    char text[24];
    if (!bk_req_get (req, "wait", &wait) || wait.type != AQ_NODE_INT || wait.i <= 0 ||
        wait.i > S_MAX_WAIT_S || !bk_req_str (req, "since", text, sizeof text))
        return false;
    char *end;
    uint64_t since = strtoull (text, &end, 10);
    if (*end || end == text || req->rid_size > sizeof self->held[0].rid ||
        since != bk_minutes_changes (self->engine->minutes, req->team))
        return false;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->held = realloc (self->held, self->cap * sizeof *self->held);
        assert (self->held);
    }
    s_held_t *held = &self->held[self->count++];
    held->socket = req->socket;
    memcpy (held->rid, req->rid, req->rid_size);
    held->rid_size = req->rid_size;
    held->corr = req->corr;
    memcpy (held->team, req->team, 16);
    held->since = since;
    held->deadline = self->engine->mono + wait.i * 1000;
    return true;
}

void bk_figures_tick (bk_figures_t *self) {
    bk_engine_t *engine = self->engine;
    for (size_t i = 0; i < self->count;) {
        s_held_t *held = &self->held[i];
        if (bk_minutes_changes (engine->minutes, held->team) == held->since &&
            engine->mono < held->deadline) {
            i++;
            continue;
        }
        aq_writer_t *w = bk_outbox_reply_start (engine->outbox, held->corr, AQ_OK);
        aq_write_str (w, "body");
        bk_figures_team (self, w, held->team, true);
        bk_outbox_reply_queue (engine->outbox, held->socket, held->rid, held->rid_size, 1);
        memmove (held, held + 1, (self->count - i - 1) * sizeof *held);
        self->count--;
    }
}

int64_t bk_figures_next_deadline (bk_figures_t *self) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->count; i++)
        if (self->held[i].deadline < next)
            next = self->held[i].deadline;
    return next;
}

//  --------------------------------------------------------------------------
//  Selftest over rig_core: the figures written straight (the requests, and
//  the long poll, end to end: handlers.c)

#include "../tests/rig_core.h"
#include "aq_json.h"

static char *s_dump (aq_writer_t *w) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    aq_node_t node;
    assert (data && aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_reset (w);
    return text;
}

void bk_figures_test (bool verbose) {
    if (verbose)
        printf (" * bk_figures: ");
    rig_core_t *rig = rig_core_new ("figures", false);
    char id[AQ_UUID_TEXT];
    assert (rig_core_create (rig, "{\"targetUrl\": \"http://t.test/a\"}", id) == AQ_CREATED);
    bk_figures_t *self = bk_figures_new (rig->engine, rig->dispatch, NULL);
    aq_writer_t w;
    aq_writer_init (&w);
    bk_figures_team (self, &w, rig->team, false);
    char *text = s_dump (&w);
    assert (strcmp (text, "{\"scope\":\"team\",\"tasks\":{\"pending\":1,\"delayed\":0,"
                          "\"processing\":0,\"waiting\":0,\"polling\":0,\"completed\":0,"
                          "\"failed\":0,\"timeout\":0,\"cancelled\":0},\"counters\":"
                          "{\"created\":1}}") == 0);
    free (text);
    bk_figures_team (self, &w, rig->team, true);
    text = s_dump (&w);
    assert (strstr (text, "\"workers\":0,\"minutes\":[{\"at\":"));
    assert (strstr (text, "\"created\":1,\"completed\":0,\"failed\":0}],\"changes\":1}"));
    free (text);
    bk_figures_global (self, &w);
    text = s_dump (&w);
    assert (strstr (text, "{\"scope\":\"global\",\"tasks\":{\"pending\":1,"));
    assert (strstr (text, "\"refusedConnections\":0,") && strstr (text, "\"+Inf\":0}"));
    free (text);
    assert (bk_figures_next_deadline (self) == INT64_MAX);
    bk_figures_tick (self); //  nothing held: nothing sent
    aq_writer_release (&w);
    bk_figures_destroy (&self);
    bk_figures_destroy (&self);
    rig_core_destroy (&rig);
    if (verbose)
        printf ("OK\n");
}
