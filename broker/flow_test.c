/*  flow_test.c - bk_flow's selftest: the module alone, then the broker over rig_core

    First flow.c over a test store, its callers played by hand. Then the
    broker's task modules as the loop wires them (tests/rig_core.h): a
    client creates tasks with flowControl, fake workers take JOBs and
    answer, the rig's clock runs the timers. Asserted there: a key's
    parallelism is never exceeded (a waiting task holds its slot), its
    parked tasks stay pending out of the ready queue and a key-less task
    passes them; a 429 holds the key until Retry-After, halves its rate and
    it climbs back; a 503 holds it only with Retry-After; pause, resume and
    a restart that keeps limits, pause, the backed-off rate and the count
    of tasks in flight.
*/
#include "flow.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "tasks.h"

#include "../tests/rig_core.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  The module alone

//  A pending task of key in team, stored (its team listed, so recovery
//  finds it).
static bk_task_t *s_test_task (bk_store_t *store, const uint8_t team[16], const char *key,
                               uint64_t seq, int priority) {
    bk_task_t *task = bk_task_new (0);
    memcpy (task->team, team, 16);
    task->id[0] = (uint8_t) seq, task->id[1] = team[0], task->id[15] = 0xF1;
    task->seq = seq;
    task->priority = priority;
    task->status = BK_ST_PENDING;
    task->target_url = bk_task_strdup (task, "http://x/");
    task->flow_key = key ? bk_task_strdup (task, key) : NULL;
    assert (bk_store_put (store, BK_DB_TEAMS, team, 16, "t", 1) == 0);
    assert (bk_tasks_save (store, task, 0) == 0);
    return task;
}

//  The task a status change takes it to, saved, and told to flow.
static void s_test_move (bk_flow_t *flow, bk_store_t *store, bk_task_t *task, int status,
                         int64_t now) {
    int old = task->status;
    task->status = status;
    assert (bk_tasks_save (store, task, old) == 0);
    bk_flow_moved (flow, task, old, now);
}

//  Pops the ready queue: the seq byte of the task's id, 0 when empty.
static int s_test_pop (bk_queue_t *queue) {
    uint8_t id[16];
    return bk_queue_pop (queue, id) == 0 ? id[0] : 0;
}

static bk_flow_info_t s_test_info (bk_flow_t *flow, const uint8_t team[16], const char *key,
                                   int64_t now) {
    bk_flow_info_t info;
    assert (bk_flow_get (flow, team, key, now, &info) == 0);
    return info;
}

//  The module alone: names, limits, parking, the rate window, the hold,
//  pause, the public shape, a restart
static void s_module_alone (void) {
    //  names and the request's limits
    assert (bk_flow_key_valid ("fal-prod:eu.1_a", 15) && !bk_flow_key_valid ("a b", 3));
    assert (!bk_flow_key_valid ("", 0) && !bk_flow_key_valid ("x/y", 3));
    char long_key[102];
    memset (long_key, 'k', 101);
    assert (bk_flow_key_valid (long_key, 100) && !bk_flow_key_valid (long_key, 101));
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 2);
    aq_write_kv_int (&w, "rate", 5);
    aq_write_kv_int (&w, "period", 60);
    size_t size;
    const uint8_t *bytes = aq_writer_data (&w, &size);
    aq_node_t body;
    assert (aq_msg_parse (bytes, size, &body) == 0);
    char key[BK_FLOW_KEY_MAX + 1], errbuf[160];
    bk_flow_limits_t limits;
    assert (!bk_flow_parse (&body, false, "", key, &limits, errbuf, sizeof errbuf));
    assert (limits.rate == 5 && limits.period == 60 && limits.parallelism == 0);
    const char *error = bk_flow_parse (&body, true, "flowControl.", key, &limits, errbuf, 160);
    assert (error && strcmp (error, "flowControl.key is required") == 0);
    aq_writer_reset (&w);
    aq_write_map (&w, 1);
    aq_write_kv_int (&w, "burst", 5);
    bytes = aq_writer_data (&w, &size);
    assert (aq_msg_parse (bytes, size, &body) == 0);
    error = bk_flow_parse (&body, false, "", key, &limits, errbuf, sizeof errbuf);
    assert (error && strcmp (error, "Unknown field: burst") == 0);
    aq_writer_reset (&w);
    aq_write_map (&w, 0);
    bytes = aq_writer_data (&w, &size);
    assert (aq_msg_parse (bytes, size, &body) == 0);
    error = bk_flow_parse (&body, false, "", key, &limits, errbuf, sizeof errbuf);
    assert (error && strcmp (error, "rate or parallelism is required") == 0);
    aq_writer_reset (&w);

    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_queue_t *queue = bk_queue_new (store);
    bk_flow_t *flow = bk_flow_new (store, queue);
    uint8_t team[16] = {0xA}, other[16] = {0xB};
    int64_t now = 1700000000000;
    bk_flow_info_t info;
    assert (bk_flow_get (flow, team, "gpu", now, &info) == BK_NOTFOUND);
    assert (bk_flow_pause (flow, team, "gpu", true, now) == BK_NOTFOUND);

    //  parallelism 2: two go to the ready queue, the rest park (and cost
    //  nothing until a slot frees); a freed slot releases the FIFO's head
    assert (bk_flow_set (flow, team, "gpu", &(bk_flow_limits_t){0, 1, 2}, now) == 0);
    bk_task_t *t[9] = {NULL};
    for (int i = 1; i <= 5; i++) {
        t[i] = s_test_task (store, team, "gpu", (uint64_t) i, 5);
        assert (bk_flow_ready (flow, t[i], now) == 0);
    }
    info = s_test_info (flow, team, "gpu", now);
    assert (info.waiting == 3 && info.in_flight == 0 && info.limits.parallelism == 2);
    assert (bk_flow_next_wake (flow, now) == INT64_MAX); //  no timer: waits for a slot
    for (int i = 1; i <= 2; i++) {
        assert (s_test_pop (queue) == i);
        assert (bk_flow_admit (flow, t[i], now));
        s_test_move (flow, store, t[i], BK_ST_PROCESSING, now);
    }
    assert (s_test_pop (queue) == 0);
    s_test_move (flow, store, t[1], BK_ST_WAITING, now); //  still in flight
    assert (s_test_pop (queue) == 0);
    s_test_move (flow, store, t[1], BK_ST_COMPLETED, now);
    assert (s_test_pop (queue) == 3); //  the oldest parked
    assert (bk_flow_admit (flow, t[3], now));
    s_test_move (flow, store, t[3], BK_ST_PROCESSING, now);
    //  a task of the key in the ready queue that the key did not put there
    //  (as after a restart) is refused when full, and parked
    t[0] = s_test_task (store, team, "gpu", 9, 5);
    assert (bk_queue_push (queue, 5, team, 9, t[0]->id) == 0);
    assert (s_test_pop (queue) == 9);
    assert (!bk_flow_admit (flow, t[0], now));
    info = s_test_info (flow, team, "gpu", now);
    assert (info.in_flight == 2 && info.waiting == 3);
    //  a parked task cancelled leaves the FIFO
    s_test_move (flow, store, t[5], BK_ST_CANCELLED, now);
    assert (s_test_info (flow, team, "gpu", now).waiting == 2);
    //  a higher priority task parks ahead of older ones
    t[6] = s_test_task (store, team, "gpu", 6, 9);
    assert (bk_flow_ready (flow, t[6], now) == 0);
    assert (s_test_pop (queue) == 0);
    s_test_move (flow, store, t[2], BK_ST_FAILED, now);
    assert (s_test_pop (queue) == 6);
    assert (bk_flow_admit (flow, t[6], now));
    s_test_move (flow, store, t[6], BK_ST_POLLING, now); //  a provider job holds its slot

    //  the same name in another team is another key
    assert (bk_flow_get (flow, other, "gpu", now, &info) == BK_NOTFOUND);
    assert (bk_flow_set (flow, other, "gpu", &(bk_flow_limits_t){0, 1, 1}, now) == 0);
    t[7] = s_test_task (store, other, "gpu", 7, 5);
    assert (bk_flow_ready (flow, t[7], now) == 0);
    assert (s_test_pop (queue) == 7);
    assert (s_test_info (flow, other, "gpu", now).waiting == 0);

    //  rate 2 per 1 s: two start, the third waits for the sliding window
    //  (1 s + 25 ms of margin) to turn, on a timer
    assert (bk_flow_set (flow, team, "api", &(bk_flow_limits_t){2, 1, 0}, now) == 0);
    bk_task_t *r[6] = {NULL};
    for (int i = 0; i < 3; i++) {
        r[i] = s_test_task (store, team, "api", (uint64_t) (20 + i), 5);
        assert (bk_flow_ready (flow, r[i], now) == 0);
    }
    for (int i = 0; i < 2; i++) {
        assert (s_test_pop (queue) == 20 + i);
        assert (bk_flow_admit (flow, r[i], now + 10 * i));
        s_test_move (flow, store, r[i], BK_ST_PROCESSING, now + 10 * i);
    }
    assert (s_test_pop (queue) == 0 && s_test_info (flow, team, "api", now).waiting == 1);
    assert (bk_flow_next_wake (flow, now) == now + 1025);
    bk_flow_work (flow, now + 1024);
    assert (s_test_pop (queue) == 0);
    bk_flow_work (flow, now + 1025);
    assert (s_test_pop (queue) == 22);
    assert (bk_flow_admit (flow, r[2], now + 1025));
    s_test_move (flow, store, r[2], BK_ST_PROCESSING, now + 1025);
    //  its rate window now holds 10 ms and 1025 ms: a new one waits till 1035
    r[3] = s_test_task (store, team, "api", 23, 5);
    assert (bk_flow_ready (flow, r[3], now + 1026) == 0);
    assert (bk_flow_next_wake (flow, now + 1026) == now + 1035);

    //  a 429 holds the key (Retry-After 2 s) and halves its rate; a second
    //  one during the hold does not halve it again; it climbs back by a
    //  tenth of the rate each period after the hold
    int64_t at = now + 2000;
    assert (bk_flow_throttled (flow, r[0], 2000, 3600000, at) == 0);
    assert (bk_flow_throttled (flow, r[1], -1, 3600000, at + 5) == 0);
    info = s_test_info (flow, team, "api", at);
    assert (info.held_until == at + 2000 && fabs (info.effective_rate - 1.0) < 1e-9);
    bk_flow_work (flow, at + 1999);
    assert (s_test_pop (queue) == 0);
    assert (bk_flow_next_wake (flow, at) == at + 2000);
    bk_flow_work (flow, at + 2000);
    assert (s_test_pop (queue) == 23); //  released when the hold ended
    info = s_test_info (flow, team, "api", at + 2000);
    assert (info.held_until == -1 && fabs (info.effective_rate - 1.0) < 1e-9);
    assert (fabs (s_test_info (flow, team, "api", at + 3000).effective_rate - 1.2) < 1e-9);
    assert (fabs (s_test_info (flow, team, "api", at + 6500).effective_rate - 1.8) < 1e-9);
    assert (s_test_info (flow, team, "api", at + 60000).effective_rate == 2.0);
    //  Retry-After is capped (by the back-off cap); the floor is rate / 100
    assert (bk_flow_throttled (flow, r[0], 90000, 5000, at + 60000) == 0);
    assert (s_test_info (flow, team, "api", at + 60000).held_until == at + 65000);
    for (int i = 0; i < 12; i++)
        assert (bk_flow_throttled (flow, r[0], 0, 5000, at + 70000 + i) == 0);
    assert (fabs (s_test_info (flow, team, "api", at + 70011).effective_rate - 0.02) < 1e-9);
    //  new limits restart the effective rate
    assert (bk_flow_set (flow, team, "api", &(bk_flow_limits_t){4, 1, 0}, at + 70011) == 0);
    assert (s_test_info (flow, team, "api", at + 70011).effective_rate == 4.0);

    //  pause: a popped task parks, nothing is released; resume releases
    int64_t later = at + 80000;
    assert (bk_flow_pause (flow, team, "gpu", true, later) == 0);
    t[8] = s_test_task (store, team, "gpu", 8, 5);
    s_test_move (flow, store, t[3], BK_ST_COMPLETED, later); //  a slot frees
    assert (bk_flow_ready (flow, t[8], later) == 0);
    assert (s_test_pop (queue) == 0);
    info = s_test_info (flow, team, "gpu", later);
    assert (info.paused && info.waiting == 3 && info.in_flight == 1);

    //  the public shape
    bk_flow_write_public (&info, later, &w);
    bytes = aq_writer_data (&w, &size);
    aq_node_t shown, value;
    assert (aq_msg_parse (bytes, size, &shown) == 0);
    assert (aq_node_get (&shown, "key", &value) && aq_node_streq (&value, "gpu"));
    assert (aq_node_get (&shown, "parallelism", &value) && value.i == 2);
    assert (!aq_node_get (&shown, "rate", &value) && !aq_node_get (&shown, "heldUntil", &value));
    assert (aq_node_get (&shown, "paused", &value) && value.b);
    aq_writer_reset (&w);
    //  a team's keys list by name (a shorter name first only when it sorts first)
    assert (bk_flow_set (flow, team, "ab", &(bk_flow_limits_t){0, 1, 1}, later) == 0);
    uint64_t total;
    static const char *const names[] = {"ab", "api", "gpu"};
    for (int i = 0; i < 3; i++) {
        assert (bk_flow_write_page (flow, team, 1, i, later, &w, &total) == 1 && total == 3);
        bytes = aq_writer_data (&w, &size);
        assert (aq_msg_parse (bytes, size, &shown) == 0 && shown.count == 1);
        aq_iter_t it;
        aq_node_iter (&shown, &it);
        assert (aq_iter_next (&it, NULL, &value) && aq_node_get (&value, "key", &value));
        assert (aq_node_streq (&value, names[i]));
        aq_writer_reset (&w);
    }
    assert (bk_flow_write_page (flow, team, 50, 3, later, &w, &total) == 0 && total == 3);
    aq_writer_reset (&w);

    //  a restart: limits, pause and the AIMD state are in the store; the
    //  parked and in-flight counts are rebuilt from it
    bk_flow_destroy (&flow);
    flow = bk_flow_new (store, queue);
    bk_flow_recover (flow);
    info = s_test_info (flow, team, "gpu", later);
    assert (info.paused && info.waiting == 3 && info.in_flight == 1); //  t[6] is polling
    info = s_test_info (flow, team, "api", later);
    assert (info.limits.rate == 4 && info.in_flight == 3 && info.waiting == 0);
    assert (bk_flow_next_wake (flow, later) == later); //  it looks at the parked at once
    bk_flow_work (flow, later);
    assert (s_test_pop (queue) == 0); //  still paused
    assert (bk_flow_pause (flow, team, "gpu", false, later) == 0);
    assert (s_test_pop (queue) == 4 && s_test_pop (queue) == 0); //  one slot free
    s_test_move (flow, store, t[6], BK_ST_TIMEOUT, later);
    assert (s_test_pop (queue) == 8);

    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        bk_task_destroy (&t[i]);
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        bk_task_destroy (&r[i]);
    aq_writer_release (&w);
    bk_flow_destroy (&flow);
    bk_queue_destroy (&queue);
    bk_store_test_destroy (&store, dir);
}

//  --------------------------------------------------------------------------
//  The broker over rig_core

//  A JOB a fake worker holds: what its RESULT must echo.
typedef struct {
    char id[AQ_UUID_TEXT]; //  the task's
    int attempt;           //  its attempt
    char lease[64];        //  its lease
    char token[80];        //  its AsyncQueue-Signal-Token
} s_job_t;

//  The JOBs the worker was sent since the last look, appended to jobs;
//  returns the new count.
static int s_jobs (rig_worker_t *worker, s_job_t *jobs, int count, int max) {
    while (rig_worker_job (worker)) {
        assert (count < max);
        s_job_t *job = &jobs[count++];
        snprintf (job->id, sizeof job->id, "%s", worker->id);
        job->attempt = worker->attempt;
        snprintf (job->lease, sizeof job->lease, "%s", worker->lease);
        rig_worker_field (worker, "headers.AsyncQueue-Signal-Token", job->token, sizeof job->token);
    }
    return count;
}

//  The worker answers jobs[0] with the fields of answer (a JSON object's
//  inside), which leaves the list; a turn runs. Returns the new count.
static int s_answer_first (rig_worker_t *worker, s_job_t *jobs, int count, const char *answer) {
    assert (count > 0);
    char json[512];
    snprintf (json, sizeof json, "{\"id\": \"%s\", \"attempt\": %d, \"lease\": \"%s\", %s}",
              jobs[0].id, jobs[0].attempt, jobs[0].lease, answer);
    rig_worker_answer (worker, json);
    memmove (jobs, jobs + 1, (size_t) (count - 1) * sizeof *jobs);
    return count - 1;
}

//  GET /v1/flow-control/:key as the team: its public map is exactly want.
static void s_key_is (rig_core_t *rig, const char *key, const char *want) {
    assert (rig_core_call (rig, AQ_CMD_FLOW_GET, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           key) == AQ_OK);
    char full[512];
    snprintf (full, sizeof full, "{\"flowControl\":%s}", want);
    if (strcmp (rig->json, full) != 0)
        fprintf (stderr, "bk_flow: key '%s' is %s, want %s\n", key, rig->json, full);
    assert (strcmp (rig->json, full) == 0);
}

#define S_GPU                                                                                      \
    "{\"targetUrl\": \"http://t.test/gpu\", \"flowControl\": {\"key\": \"gpu\", \"parallelism\": " \
    "2}}"

//  Parallelism 2 with 10 worker slots: two calls out, four tasks parked
//  (pending, out of the ready queue), a key-less task passes them; each
//  freed slot starts the oldest parked, a waiting task holds its slot
static void s_rig_parallelism (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 10);
    char ids[6][AQ_UUID_TEXT];
    s_job_t jobs[8];
    int out = 0;
    for (int i = 0; i < 6; i++) {
        rig_core_created (rig, S_GPU, ids[i]);
        out = s_jobs (worker, jobs, out, 8);
        assert (out == (i < 2 ? i + 1 : 2));
    }
    assert (strcmp (jobs[0].id, ids[0]) == 0 && strcmp (jobs[1].id, ids[1]) == 0);
    for (int i = 2; i < 6; i++) {
        rig_core_is (rig, ids[i], BK_ST_PENDING);
        assert (!rig_core_ready (rig, ids[i]));
        rig_core_expect_events (rig, ids[i], "pending");
    }
    rig_core_get_shows (rig, ids[5], "\"status\":\"pending\"");
    s_key_is (rig, "gpu",
              "{\"key\":\"gpu\",\"period\":1,\"parallelism\":2,\"inFlight\":2,\"waiting\":4,"
              "\"paused\":false}");
    //  more turns, later: still two out
    rig_core_later (rig, 5000);
    assert (s_jobs (worker, jobs, out, 8) == 2);
    //  a key-less task does not wait behind the key
    char free_id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/free\"}", free_id);
    rig_worker_expect (worker, free_id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_is (rig, free_id, BK_ST_COMPLETED);

    //  the first call answers 202 + AsyncQueue-Wait: waiting, its slot held
    char token[80];
    snprintf (token, sizeof token, "%s", jobs[0].token);
    char waiting[AQ_UUID_TEXT];
    snprintf (waiting, sizeof waiting, "%s", jobs[0].id);
    out = s_answer_first (worker, jobs, out,
                          "\"statusCode\": 202, \"headers\": {\"asyncqueue-wait\": \"true\"}");
    rig_core_is (rig, waiting, BK_ST_WAITING);
    assert (s_jobs (worker, jobs, out, 8) == 1);
    s_key_is (rig, "gpu",
              "{\"key\":\"gpu\",\"period\":1,\"parallelism\":2,\"inFlight\":2,\"waiting\":4,"
              "\"paused\":false}");
    //  its signal frees the slot: the oldest parked starts
    assert (rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                           "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": "
                           "\"completed\"}}",
                           token, waiting) == AQ_OK);
    rig_core_is (rig, waiting, BK_ST_COMPLETED);
    out = s_jobs (worker, jobs, out, 8);
    assert (out == 2 && strcmp (jobs[1].id, ids[2]) == 0);
    //  the rest, one answer at a time: never more than two out, in order
    int next = 3;
    while (out > 0) {
        out = s_answer_first (worker, jobs, out, "\"statusCode\": 200");
        out = s_jobs (worker, jobs, out, 8);
        assert (out <= 2);
        if (next < 6) {
            assert (out == 2 && strcmp (jobs[1].id, ids[next]) == 0);
            next++;
        }
    }
    for (int i = 0; i < 6; i++) {
        rig_core_is (rig, ids[i], BK_ST_COMPLETED);
        rig_core_events (rig, ids[i]);
    }
    s_key_is (rig, "gpu",
              "{\"key\":\"gpu\",\"period\":1,\"parallelism\":2,\"inFlight\":0,\"waiting\":0,"
              "\"paused\":false}");
    rig_worker_bye (worker);
}

#define S_API                                                                                      \
    "{\"targetUrl\": \"http://t.test/api\", \"maxRetries\": 0, \"flowControl\": {\"key\": "        \
    "\"api\", \"rate\": 10}}"

//  The key's public map while held until until: prefix, then heldUntil.
static void s_held_is (rig_core_t *rig, const char *key, const char *prefix, int64_t until) {
    char stamp[32], want[384];
    snprintf (want, sizeof want, "%s,\"heldUntil\":\"%s\"}", prefix, aq_time_format (until, stamp));
    s_key_is (rig, key, want);
}

//  A 429 with Retry-After 2 holds the key 2 s and halves its rate (10 to
//  5); a task of the key waits out the hold, a key-less one does not; the
//  rate climbs a tenth per period; a 503 holds only with Retry-After
static void s_rig_hold (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 10);
    char a[AQ_UUID_TEXT], b[AQ_UUID_TEXT], c[AQ_UUID_TEXT];
    rig_core_created (rig, S_API, a);
    rig_worker_expect (worker, a, "");
    rig_core_advance (rig, 20);
    rig_worker_answer (worker, "{\"statusCode\": 429, \"retryAfter\": 2}");
    rig_core_is (rig, a, BK_ST_FAILED); //  retried as any 5xx: maxRetries 0
    int64_t until = rig->now + 2000;
    s_held_is (rig, "api",
               "{\"key\":\"api\",\"rate\":10,\"period\":1,\"effectiveRate\":5,\"inFlight\":0,"
               "\"waiting\":0,\"paused\":false",
               until);
    rig_core_created (rig, S_API, b);
    assert (!rig_worker_job (worker) && !rig_core_ready (rig, b));
    rig_core_is (rig, b, BK_ST_PENDING);
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/free\"}", c);
    rig_worker_expect (worker, c, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_later (rig, until - rig->now - 1);
    assert (!rig_worker_job (worker));
    s_held_is (rig, "api",
               "{\"key\":\"api\",\"rate\":10,\"period\":1,\"effectiveRate\":5,\"inFlight\":0,"
               "\"waiting\":1,\"paused\":false",
               until);
    rig_core_later (rig, 1); //  the hold ends: the parked task starts
    rig_worker_expect (worker, b, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_is (rig, b, BK_ST_COMPLETED);
    rig_core_advance (rig, 1000); //  a period without a 429: 5 + 1
    s_key_is (rig, "api",
              "{\"key\":\"api\",\"rate\":10,\"period\":1,\"effectiveRate\":6,\"inFlight\":0,"
              "\"waiting\":0,\"paused\":false}");

    //  503 without Retry-After: an error, not a hold
    rig_core_created (rig, S_API, a);
    rig_worker_expect (worker, a, "");
    rig_worker_answer (worker, "{\"statusCode\": 503}");
    rig_core_is (rig, a, BK_ST_FAILED);
    s_key_is (rig, "api",
              "{\"key\":\"api\",\"rate\":10,\"period\":1,\"effectiveRate\":6,\"inFlight\":0,"
              "\"waiting\":0,\"paused\":false}");
    //  503 with Retry-After 1: held 1 s, 6 halved
    rig_core_created (rig, S_API, a);
    rig_worker_expect (worker, a, "");
    rig_worker_answer (worker, "{\"statusCode\": 503, \"retryAfter\": 1}");
    rig_core_is (rig, a, BK_ST_FAILED);
    s_held_is (rig, "api",
               "{\"key\":\"api\",\"rate\":10,\"period\":1,\"effectiveRate\":3,\"inFlight\":0,"
               "\"waiting\":0,\"paused\":false",
               rig->now + 1000);
    rig_core_later (rig, 1000);
    rig_worker_bye (worker);
}

#define S_EXT                                                                                      \
    "{\"targetUrl\": \"http://t.test/ext\", \"flowControl\": {\"key\": \"ext\", \"parallelism\": " \
    "1}}"

//  Pause holds a key's tasks pending; a restart keeps its limits, pause,
//  a backed-off rate and the count in flight (a call still out); resume
//  starts the parked
static void s_rig_pause_restart (rig_core_t *rig) {
    assert (rig_core_call (rig, AQ_CMD_FLOW_PAUSE, "{\"key\": \"%s\", \"id\": \"nope\"}",
                           rig->key) == AQ_NOT_FOUND);
    assert (strcmp (rig->error, "Flow control key not found") == 0);
    rig_worker_t *worker = rig_core_worker (rig, "d", 2);
    char x[AQ_UUID_TEXT], y[AQ_UUID_TEXT], answer[256];
    rig_core_created (rig, S_EXT, x);
    rig_worker_expect (worker, x, "");
    snprintf (answer, sizeof answer,
              "{\"id\": \"%s\", \"attempt\": 1, \"lease\": \"%s\", \"statusCode\": 200}", x,
              worker->lease);
    assert (rig_core_call (rig, AQ_CMD_FLOW_PAUSE, "{\"key\": \"%s\", \"id\": \"ext\"}",
                           rig->key) == AQ_OK);
    rig_core_created (rig, S_EXT, y);
    const char *paused = "{\"key\":\"ext\",\"period\":1,\"parallelism\":1,\"inFlight\":1,"
                         "\"waiting\":1,\"paused\":true}";
    s_key_is (rig, "ext", paused);
    assert (rig_core_call (rig, AQ_CMD_FLOW_GET, "{\"key\": \"%s\", \"id\": \"api\"}", rig->key) ==
            AQ_OK);
    char api[512];
    snprintf (api, sizeof api, "%s", rig->json + strlen ("{\"flowControl\":"));
    api[strlen (api) - 1] = '\0';

    rig_core_restart (rig);
    s_key_is (rig, "ext", paused);
    s_key_is (rig, "api", api);
    rig_core_is (rig, y, BK_ST_PENDING);
    //  the call out when the broker stopped still settles; paused, nothing starts
    rig_core_turn (rig);
    assert (!rig_worker_job (worker));
    rig_worker_result (worker, answer);
    rig_core_turn (rig);
    rig_core_is (rig, x, BK_ST_COMPLETED);
    rig_worker_send (worker, AQ_CMD_READY, "{\"credit\": 2, \"name\": \"d\"}");
    rig_core_later (rig, 1000);
    assert (!rig_worker_job (worker));
    s_key_is (rig, "ext",
              "{\"key\":\"ext\",\"period\":1,\"parallelism\":1,\"inFlight\":0,\"waiting\":1,"
              "\"paused\":true}");
    assert (rig_core_call (rig, AQ_CMD_FLOW_RESUME, "{\"key\": \"%s\", \"id\": \"ext\"}",
                           rig->key) == AQ_OK);
    rig_worker_expect (worker, y, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_is (rig, y, BK_ST_COMPLETED);
    rig_worker_bye (worker);
}

static const struct {
    const char *name;
    void (*run) (rig_core_t *rig);
} s_steps[] = {
    {"parallelism never exceeded; parked tasks pending; a key-less one passes", s_rig_parallelism},
    {"429 and 503 + Retry-After hold the key and halve its rate; it climbs back", s_rig_hold},
    {"pause, a restart, resume", s_rig_pause_restart},
};

void bk_flow_test (bool verbose) {
    if (verbose)
        printf ("bk_flow: the module alone\n");
    s_module_alone ();
    rig_core_t *rig = rig_core_new ("flow", false);
    for (size_t i = 0; i < sizeof s_steps / sizeof *s_steps; i++) {
        if (verbose)
            printf ("bk_flow: %s\n", s_steps[i].name);
        s_steps[i].run (rig);
    }
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_flow: ok\n");
}
