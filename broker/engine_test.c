/*  engine_test.c - bk_engine's selftest: every status change of a task, without processes

    The engine's callers (dispatch, results, handlers, timers) make the
    changes, so this test drives them as the loop does, over rig_core: a
    client sends requests, fake workers take JOBs and send RESULTs, the
    rig's clock moves the timers. Each step asserts the stored record (the
    rig checks its indexes and counters), the ready and delay queues, the
    events and the long polls answered. s_changes lists every status change
    the code makes, s_steps walks them; the events tell which happened, and
    at the end each change listed must have been seen, and no other.
*/
#include "engine.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "delay.h"
#include "poll.h"

#include "../tests/rig_core.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The statuses, short for the table below (their codes are stored: they
//  do not move).
enum { P = BK_ST_PENDING, D, R, W, L, C, F, T, X };
_Static_assert((int) D == BK_ST_DELAYED && (int) X == BK_ST_CANCELLED, "bk_status_t changed");

//  Every status change the code makes: from (0: created), to, and what.
static const struct {
    int from, to;
    const char *how;
} s_changes[] = {
    {0, P, "created (engine insert)"},
    {0, D, "created with delayUntil (engine insert)"},
    {D, P, "delayUntil or a retry's back-off is due (promote_due)"},
    {P, R, "dispatched (dispatch s_call)"},
    {P, F, "its JOB cannot be made: a token gone, too large (dispatch s_call)"},
    {R, C, "2xx, 3xx, 4xx; 202 without AsyncQueue-Wait (results)"},
    {R, D, "5xx, an error: a retry after the back-off (engine attempt_failed)"},
    {R, F, "retries used up, permanent, a job API's non-2xx (results, attempt_failed)"},
    {R, P, "the lease lost, or the worker refused the call (dispatch, results)"},
    {R, W, "202 with AsyncQueue-Wait: true (results)"},
    {R, L, "a job API answered 2xx: pollConfig or provider (results)"},
    {W, C, "signalled completed (handlers)"},
    {W, F, "signalled failed (handlers)"},
    {W, T, "maxWaitTime passed (promote_due)"},
    {W, X, "cancelled (handlers)"},
    {L, C, "the job is done (results)"},
    {L, F, "the job failed, its provider failed (results)"},
    {L, T, "maxWaitTime passed, the provider's cancel owed (promote_due)"},
    {L, X, "cancelled, the provider's cancel owed (handlers)"},
    {P, X, "cancelled (handlers)"},
    {D, X, "cancelled (handlers)"},
    {F, P, "retried (handlers)"},
    {T, P, "retried (handlers)"},
};

//  --------------------------------------------------------------------------
//  The steps

//  created -> pending; a worker comes: pending -> processing -> completed
static void s_call_completes (rig_core_t *rig) {
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/ok\", \"body\": \"hi\"}", id);
    assert (rig_core_shows (rig, "\"status\":\"pending\""));
    const bk_task_t *task = rig_core_is (rig, id, P);
    assert (task->attempts == 0 && task->started_at < 0 && task->created_at == rig->now);
    assert (task->completed_at < 0 && !task->lease[0] && !task->signal[0]);
    assert (rig_core_ready (rig, id));
    rig_core_expect_events (rig, id, "pending");

    //  a long poll (GET ?wait) is held, and answered by the next change
    int64_t corr = rig_core_send (rig, AQ_CMD_TASK_GET,
                                  "{\"key\": \"%s\", \"id\": \"%s\", \"wait\": 5}", rig->key, id);
    rig_core_turn (rig);
    assert (rig_core_answer (rig) < 0 && bk_waiters_count (rig->engine->waiters) == 1);
    uint64_t dispatched = rig->engine->stats.dispatched;
    rig_core_advance (rig, 5);
    rig_worker_t *worker = rig_core_worker (rig, NULL, 4);
    assert (rig_core_answer (rig) == AQ_OK && rig->answer_corr == corr);
    assert (rig_core_shows (rig, "\"status\":\"processing\""));
    assert (bk_waiters_count (rig->engine->waiters) == 0);
    rig_worker_expect (worker, id, "");
    assert (worker->attempt == 1 && strlen (worker->lease) == 32);
    task = rig_core_is (rig, id, R);
    assert (task->attempts == 1 && task->attempt_at == rig->now && task->started_at == rig->now);
    assert (strcmp (task->lease, worker->lease) == 0 && strlen (task->signal) == 64);
    assert (!rig_core_ready (rig, id) && rig->engine->stats.dispatched == dispatched + 1);
    rig_core_expect_events (rig, id, "processing");
    rig_core_get_shows (rig, id, "\"startedAt\":\"2024-01-15T10:30:00.005Z\"");

    rig_core_advance (rig, 12);
    uint64_t completed = rig->engine->stats.completed;
    rig_worker_answer (worker,
                       "{\"statusCode\": 201, \"headers\": {\"x-a\": \"1\"}, \"body\": \"made\", "
                       "\"duration\": 12}");
    task = rig_core_is (rig, id, C);
    assert (task->completed_at == rig->now && !task->error && !task->lease[0]);
    assert (rig->engine->stats.completed == completed + 1);
    rig_core_expect_events (rig, id, "completed");
    rig_core_get_shows (
        rig, id,
        "\"result\":{\"statusCode\":201,\"headers\":{\"x-a\":\"1\"},\"duration\":12,"
        "\"body\":\"made\"}");
    assert (rig_core_call (rig, AQ_CMD_TASK_ATTEMPTS, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    assert (rig_core_shows (rig, "{\"attempts\":[{\"attempt\":1,\"startedAt\":"
                                 "\"2024-01-15T10:30:00.005Z\",\"duration\":12,"
                                 "\"statusCode\":201,\"traceId\":\""));
    assert (rig_core_shows (rig, "\",\"spanId\":\""));
    //  3xx and 4xx complete too, and so does a 202 without AsyncQueue-Wait
    static const char *const answers[] = {"{\"statusCode\": 302}", "{\"statusCode\": 404}",
                                          "{\"statusCode\": 429, \"retryAfter\": 5}",
                                          "{\"statusCode\": 202}"};
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
        rig_core_created (rig, "{\"targetUrl\": \"http://t.test/ok\"}", id);
        rig_worker_expect (worker, id, "");
        rig_worker_answer (worker, answers[i]);
        rig_core_is (rig, id, C);
        rig_core_expect_events (rig, id, "pending processing completed");
    }
    rig_worker_bye (worker);
}

//  created -> delayed -> pending at delayUntil (promote_due)
static void s_delayed (rig_core_t *rig) {
    char id[AQ_UUID_TEXT], when[32], json[256];
    snprintf (json, sizeof json, "{\"targetUrl\": \"http://t.test/later\", \"delayUntil\": \"%s\"}",
              aq_time_format (rig->now + 60000, when));
    rig_core_created (rig, json, id);
    assert (rig_core_shows (rig, "\"status\":\"delayed\""));
    const bk_task_t *task = rig_core_is (rig, id, D);
    int64_t due = rig->now + 60000;
    assert (task->due == due && task->delay_until == due);
    assert (rig_core_timer (rig, BK_DELAY_TASK, id, due) && !rig_core_ready (rig, id));
    rig_core_expect_events (rig, id, "delayed");
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    rig_core_later (rig, 59999);
    assert (!rig_worker_job (worker));
    rig_core_is (rig, id, D);
    rig_core_expect_events (rig, id, "");
    rig_core_later (rig, 1); //  due: ready, and dispatched in the same turn
    rig_worker_expect (worker, id, "");
    rig_core_expect_events (rig, id, "pending processing");
    assert (!rig_core_timer (rig, BK_DELAY_TASK, id, -1));
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_expect_events (rig, id, "completed");
    rig_worker_bye (worker);
}

//  processing -> delayed (retry after the back-off of each strategy) ->
//  pending -> ... -> failed when the retries are used up
static void s_backoff (rig_core_t *rig) {
    static const struct {
        const char *name;
        int64_t delays[3]; //  before retries 1, 2, 3 (base 1000 ms)
    } strategies[] = {{"exponential", {1000, 2000, 4000}},
                      {"linear", {1000, 2000, 3000}},
                      {"fixed", {1000, 1000, 1000}}};
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    char id[AQ_UUID_TEXT], json[256];
    for (size_t s = 0; s < sizeof strategies / sizeof *strategies; s++) {
        snprintf (json, sizeof json,
                  "{\"targetUrl\": \"http://t.test/flaky\", \"maxRetries\": 3, "
                  "\"retryBackoff\": \"%s\"}",
                  strategies[s].name);
        rig_core_created (rig, json, id);
        rig_core_expect_events (rig, id, "pending processing");
        for (int retry = 1; retry <= 3; retry++) {
            rig_worker_expect (worker, id, "");
            assert (worker->attempt == retry);
            uint64_t retried = rig->engine->stats.retried;
            rig_worker_answer (worker, "{\"statusCode\": 503, \"duration\": 3}");
            const bk_task_t *task = rig_core_is (rig, id, D);
            int64_t due = rig->now + strategies[s].delays[retry - 1];
            assert (task->retry_count == retry && task->next_attempt_at == due && task->due == due);
            assert (task->error && strcmp (task->error, "HTTP 503") == 0);
            assert (rig->engine->stats.retried == retried + 1);
            assert (rig_core_timer (rig, BK_DELAY_TASK, id, due) && !rig_core_ready (rig, id));
            rig_core_expect_events (rig, id, "delayed");
            rig_core_later (rig, strategies[s].delays[retry - 1] - 1);
            assert (!rig_worker_job (worker));
            rig_core_later (rig, 1);
            rig_core_expect_events (rig, id, "pending processing");
        }
        rig_worker_expect (worker, id, "");
        assert (worker->attempt == 4);
        rig_worker_answer (worker, "{\"statusCode\": 503}");
        const bk_task_t *task = rig_core_is (rig, id, F);
        assert (task->retry_count == 3 && task->next_attempt_at < 0 && task->due < 0);
        assert (task->completed_at == rig->now && strcmp (task->error, "HTTP 503") == 0);
        rig_core_expect_events (rig, id, "failed");
        assert (rig_core_call (rig, AQ_CMD_TASK_ATTEMPTS, "{\"key\": \"%s\", \"id\": \"%s\"}",
                               rig->key, id) == AQ_OK);
        assert (rig->body.type == AQ_NODE_MAP && rig_core_shows (rig, "{\"attempt\":4,") &&
                !strstr (rig->json, "\"attempt\":5"));
    }
    //  exponential_jitter: half the exponential delay and up to the other half
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/flaky\", \"retryBackoff\": \"exponential_jitter\"}",
        id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 500}");
    const bk_task_t *task = rig_core_is (rig, id, D);
    assert (task->due >= rig->now + 500 && task->due <= rig->now + 1000);
    int64_t wait = task->due - rig->now;
    rig_core_later (rig, wait);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_expect_events (rig, id, "pending processing delayed pending processing completed");
    rig_worker_bye (worker);
}

//  Retry-After, errors without a response, permanent failures, no retries
static void s_retry_kinds (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/busy\", \"maxRetries\": 3}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 503, \"retryAfter\": 120}"); //  over the back-off
    const bk_task_t *task = rig_core_is (rig, id, D);
    assert (task->next_attempt_at == rig->now + 120000 && task->due == task->next_attempt_at);
    rig_core_later (rig, 120000);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 503, \"retryAfter\": 7200}"); //  capped at an hour
    task = rig_core_is (rig, id, D);
    assert (task->next_attempt_at == rig->now + 3600000);
    rig_core_later (rig, 3600000);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"error\": \"fetch failed: ECONNREFUSED\", \"duration\": 1}");
    task = rig_core_is (rig, id, D);
    assert (task->retry_count == 3 && strcmp (task->error, "fetch failed: ECONNREFUSED") == 0);
    assert (task->next_attempt_at == rig->now + 4000 && task->result.size); //  the last response
    rig_core_expect_events (
        rig, id,
        "pending processing delayed pending processing delayed pending processing "
        "delayed");
    rig_core_later (rig, 4000);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"error\": \"timeout after 30s\", \"duration\": 30000}");
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "timeout after 30s") == 0);
    rig_core_expect_events (rig, id, "pending processing failed");

    //  permanent: no retry whatever maxRetries says
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 5}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"error\": \"refused: a private address\", \"permanent\": true}");
    task = rig_core_is (rig, id, F);
    assert (task->retry_count == 0 && strcmp (task->error, "refused: a private address") == 0);
    rig_core_expect_events (rig, id, "pending processing failed");
    //  maxRetries 0: the first failure is the last
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 0}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 500, \"body\": \"oops\"}");
    task = rig_core_is (rig, id, F);
    assert (task->retry_count == 0 && strcmp (task->error, "HTTP 500") == 0 && task->result.size);
    rig_core_get_shows (
        rig, id, "\"result\":{\"statusCode\":500,\"headers\":{},\"duration\":0,\"body\":\"oops\"}");
    rig_core_expect_events (rig, id, "pending processing failed");
    rig_worker_bye (worker);
}

//  processing -> pending: the worker went silent (its lease lost, a
//  counted attempt) or refused the call (not an attempt); and with the
//  retries used up, processing -> failed
static void s_lost (rig_core_t *rig) {
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 1}", id);
    rig_worker_t *silent = rig_core_worker (rig, NULL, 1);
    rig_worker_expect (silent, id, "");
    rig_core_expect_events (rig, id, "pending processing");
    silent->silent = true;
    uint64_t lost = rig->engine->stats.lost;
    rig_core_later (rig, 5000); //  heartbeat 1000 ms x liveness 5: not yet
    rig_core_is (rig, id, R);
    rig_core_later (rig, 1);
    const bk_task_t *task = rig_core_is (rig, id, P);
    assert (task->retry_count == 1 && strcmp (task->error, "worker lost") == 0);
    assert (!task->lease[0] && task->next_attempt_at < 0 && task->attempts == 1);
    assert (rig_core_ready (rig, id) && rig->engine->stats.lost == lost + 1);
    rig_core_expect_events (rig, id, "pending");
    assert (rig_core_call (rig, AQ_CMD_TASK_ATTEMPTS, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    assert (rig_core_shows (rig, "\"duration\":5001,\"error\":\"worker lost\",\"traceId\""));
    rig_worker_vanish (silent);

    //  the next worker gets attempt 2; it refuses (full): not an attempt
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    rig_worker_expect (worker, id, "");
    assert (worker->attempt == 2);
    char lease[64];
    snprintf (lease, sizeof lease, "%s", worker->lease);
    rig_worker_result (worker, "{\"refused\": true}");
    rig_core_turn (rig); //  back to the queue, and out again to the worker with credit
    rig_worker_expect (worker, id, "");
    assert (worker->attempt == 2 && strcmp (worker->lease, lease) != 0);
    rig_core_expect_events (rig, id, "processing pending processing");
    task = rig_core_is (rig, id, R);
    assert (task->attempts == 2 && task->retry_count == 1);
    //  lost again: the retries are used up
    worker->silent = true;
    rig_core_later (rig, 5001);
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "worker lost") == 0 && task->completed_at == rig->now);
    rig_core_expect_events (rig, id, "failed");
    rig_worker_vanish (worker);
}

//  processing -> waiting (202 + AsyncQueue-Wait) -> completed or failed by
//  a signal, or timeout at maxWaitTime (its onCompleteUrl delivery owed)
static void s_waiting (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    char id[AQ_UUID_TEXT], token[64];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/wait\", \"maxWaitTime\": 60}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_field (worker, "headers.AsyncQueue-Signal-Token", token, sizeof token);
    assert (strncmp (token, "sig_", 4) == 0);
    rig_worker_answer (worker,
                       "{\"statusCode\": 202, \"headers\": {\"asyncqueue-wait\": \"TRUE\"}}");
    const bk_task_t *task = rig_core_is (rig, id, W);
    int64_t deadline = rig->now + 60000;
    assert (task->deadline == deadline && strlen (task->signal) == 64 && !task->error);
    assert (task->completed_at < 0 && task->result.size);
    assert (rig_core_timer (rig, BK_DELAY_TIMEOUT, id, deadline));
    rig_core_expect_events (rig, id, "pending processing waiting");
    rig_core_later (rig, 1000);
    assert (rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                           "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": "
                           "\"completed\", \"result\": {\"ok\": true}}}",
                           token, id) == AQ_OK);
    assert (rig_core_shows (rig, "\"status\":\"completed\"") &&
            rig_core_shows (rig, "\"result\":{\"ok\":true}"));
    task = rig_core_is (rig, id, C);
    assert (!task->signal[0] && task->deadline < 0 && task->completed_at == rig->now);
    assert (!rig_core_timer (rig, BK_DELAY_TIMEOUT, id, -1));
    rig_core_expect_events (rig, id, "completed");
    assert (rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                           "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": "
                           "\"completed\"}}",
                           token, id) == AQ_UNAUTH);
    assert (strcmp (rig->error, "Invalid or revoked API key") == 0);

    //  failed by a signal with the team's key
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/wait\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker,
                       "{\"statusCode\": 202, \"headers\": {\"AsyncQueue-Wait\": \"true\"}}");
    assert (rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                           "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": "
                           "\"failed\"}}",
                           rig->key, id) == AQ_OK);
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "failed by signal") == 0 && !task->signal[0]);
    rig_core_expect_events (rig, id, "pending processing waiting failed");

    //  timeout: maxWaitTime passes; the onCompleteUrl delivery is owed
    rig_core_created (
        rig,
        "{\"targetUrl\": \"http://t.test/wait\", \"maxWaitTime\": 5, \"onCompleteUrl\": "
        "\"http://hook.test/\"}",
        id);
    rig_worker_expect (worker, id, "");
    rig_worker_field (worker, "headers.AsyncQueue-Signal-Token", token, sizeof token);
    rig_worker_answer (worker,
                       "{\"statusCode\": 202, \"headers\": {\"AsyncQueue-Wait\": \"true\"}}");
    rig_core_later (rig, 4999);
    rig_core_is (rig, id, W);
    rig_core_later (rig, 1);
    task = rig_core_is (rig, id, T);
    assert (strcmp (task->error, "Task exceeded maxWaitTime of 5s") == 0);
    assert (!task->signal[0] && task->deadline < 0 && task->completed_at == rig->now);
    assert (task->notify.active && task->notify.inflight);
    rig_core_expect_events (rig, id, "pending processing waiting timeout");
    rig_worker_expect (worker, id, "notify");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    assert (rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                           "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": "
                           "\"completed\"}}",
                           token, id) == AQ_UNAUTH);
    rig_worker_bye (worker);
}

#define S_POLL_CONFIG                                                                              \
    "{\"targetUrl\": \"http://t.test/jobs\", \"maxWaitTime\": %d, \"pollConfig\": "                \
    "{\"urlTemplate\": \"http://t.test/jobs/{{job.id}}\", \"statusPath\": \"state\", "             \
    "\"doneValues\": [\"done\"], \"failValues\": [\"error\"], \"intervalSeconds\": 2}}"

//  A pollConfig task (json) made, called and its job started: polling.
static void s_config_polling (rig_core_t *rig, rig_worker_t *worker, const char *json,
                              char id[AQ_UUID_TEXT]) {
    rig_core_created (rig, json, id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker,
                       "{\"statusCode\": 201, \"body\": \"{\\\"job\\\": {\\\"id\\\": 7}}\"}");
    rig_core_is (rig, id, L);
}

//  processing -> polling (pollConfig) -> completed, failed or timeout; a
//  job API's answer other than 2xx fails the task
static void s_poll_config (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    char id[AQ_UUID_TEXT], json[512], url[128];
    snprintf (json, sizeof json, S_POLL_CONFIG, 60);
    rig_core_created (rig, json, id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (
        worker, "{\"statusCode\": 200, \"body\": \"{\\\"job\\\": {\\\"id\\\": \\\"j 1\\\"}}\"}");
    const bk_task_t *task = rig_core_is (rig, id, L);
    assert (strcmp (task->poll.status_url, "http://t.test/jobs/j%201") == 0);
    assert (task->poll.due == rig->now + 2000 && task->deadline == rig->now + 60000);
    assert (!task->poll.inflight && task->poll.seq == 0);
    assert (rig_core_timer (rig, BK_DELAY_POLL, id, rig->now + 2000));
    assert (rig_core_timer (rig, BK_DELAY_TIMEOUT, id, rig->now + 60000));
    rig_core_expect_events (rig, id, "pending processing polling");
    rig_core_later (rig, 1999);
    assert (!rig_worker_job (worker));
    rig_core_later (rig, 1);
    rig_worker_expect (worker, id, "poll");
    assert (worker->attempt == 1 && strcmp (rig_worker_field (worker, "url", url, sizeof url),
                                            "http://t.test/jobs/j%201") == 0);
    assert (strcmp (rig_worker_field (worker, "method", url, sizeof url), "GET") == 0);
    task = rig_core_is (rig, id, L);
    assert (task->poll.inflight && strcmp (task->poll.lease, worker->lease) == 0);
    assert (task->poll.due == rig->now + 30000 + 15000); //  the in-flight watchdog
    //  a 503 while running: asked again after the interval; no status change
    rig_worker_answer (worker, "{\"statusCode\": 503, \"kind\": \"poll\"}");
    task = rig_core_is (rig, id, L);
    assert (!task->poll.inflight && task->poll.due == rig->now + 2000);
    rig_core_later (rig, 2000);
    rig_worker_expect (worker, id, "poll");
    assert (worker->attempt == 2);
    rig_worker_answer (worker,
                       "{\"statusCode\": 200, \"body\": \"{\\\"state\\\": \\\"running\\\"}\"}");
    rig_core_later (rig, 2000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker, "{\"statusCode\": 200, \"body\": \"{\\\"state\\\": \\\"done\\\"}\", "
                               "\"duration\": 4}");
    task = rig_core_is (rig, id, C);
    assert (task->deadline < 0 && !task->error && task->completed_at == rig->now);
    assert (!rig_core_timer (rig, BK_DELAY_TIMEOUT, id, -1));
    rig_core_get_shows (rig, id,
                        "\"result\":{\"statusCode\":200,\"headers\":{},\"duration\":4,"
                        "\"body\":\"{\\\"state\\\": \\\"done\\\"}\"}");
    rig_core_expect_events (rig, id, "completed");

    //  a fail value
    s_config_polling (rig, worker, json, id);
    rig_core_later (rig, 2000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker,
                       "{\"statusCode\": 200, \"body\": \"{\\\"state\\\": \\\"error\\\"}\"}");
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "Polling status: error") == 0 && task->deadline < 0);
    rig_core_expect_events (rig, id, "pending processing polling failed");
    //  a refused poll (permanent) fails the task
    s_config_polling (rig, worker, json, id);
    rig_core_later (rig, 2000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker, "{\"error\": \"refused: a private address\", \"permanent\": true}");
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "refused: a private address") == 0);
    rig_core_expect_events (rig, id, "pending processing polling failed");
    //  the job API answers 404: there is no job
    rig_core_created (rig, json, id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 404}");
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "HTTP 404") == 0 && task->retry_count == 0);
    rig_core_expect_events (rig, id, "pending processing failed");
    //  maxWaitTime passes while polling: the poll due first is dropped
    snprintf (json, sizeof json, S_POLL_CONFIG, 3);
    s_config_polling (rig, worker, json, id);
    rig_core_later (rig, 3000);
    task = rig_core_is (rig, id, T);
    assert (strcmp (task->error, "Task exceeded maxWaitTime of 3s") == 0);
    assert (!task->poll.cancel_owed && !task->poll.inflight);
    assert (!rig_worker_job (worker));
    rig_core_expect_events (rig, id, "pending processing polling timeout");
    rig_worker_bye (worker);
}

#define S_FAL_PLAN                                                                                 \
    "{\"state\": 0, \"plan\": {\"statusUrl\": "                                                    \
    "\"https://queue.fal.run/fal-ai/flux/requests/r1/status\", \"resultUrl\": "                    \
    "\"https://queue.fal.run/fal-ai/flux/requests/r1\", \"cancelUrl\": "                           \
    "\"https://queue.fal.run/fal-ai/flux/requests/r1/cancel\", \"cancelMethod\": \"PUT\", "        \
    "\"intervalMs\": 1000}}"
#define S_FAL_TASK                                                                                 \
    "{\"targetUrl\": \"https://queue.fal.run/fal-ai/flux\", \"provider\": \"fal\", "               \
    "\"maxWaitTime\": %d, \"headers\": {\"Authorization\": \"Key k1\", \"X-Other\": \"o\"}}"

//  A fal task made, called, its job started and its plan read: polling,
//  its first status request due in a second.
static void s_fal_polling (rig_core_t *rig, rig_worker_t *worker, int max_wait,
                           char id[AQ_UUID_TEXT]) {
    char json[512];
    snprintf (json, sizeof json, S_FAL_TASK, max_wait);
    rig_core_created (rig, json, id);
    rig_worker_expect (worker, id, "");
    size_t ops = bk_providers_pending (rig->providers);
    rig_worker_answer (worker,
                       "{\"statusCode\": 200, \"body\": \"{\\\"request_id\\\": \\\"r1\\\"}\"}");
    const bk_task_t *task = rig_core_is (rig, id, L);
    assert (task->poll.op_pending && task->poll.op_stage == BK_POLL_INITIAL);
    assert (task->deadline == rig->now + max_wait * 1000LL && task->poll.due < 0);
    assert (bk_providers_pending (rig->providers) == ops + 1); //  its host reads the answer
    rig_core_expect_events (rig, id, "pending processing polling");
    rig_core_provider_reply (rig, id, S_FAL_PLAN, NULL);
    task = rig_core_is (rig, id, L);
    assert (!task->poll.op_pending && task->poll.stage == BK_POLL_STATUS);
    assert (task->poll.due == rig->now + 1000 && strcmp (task->poll.cancel_method, "PUT") == 0);
    rig_core_expect_events (rig, id, "");
}

//  processing -> polling (a provider: its host reads each answer) ->
//  completed, failed, or timeout with the provider's cancel owed
static void s_provider (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    char id[AQ_UUID_TEXT], text[128];
    s_fal_polling (rig, worker, 60, id);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "poll");
    assert (strcmp (rig_worker_field (worker, "url", text, sizeof text),
                    "https://queue.fal.run/fal-ai/flux/requests/r1/status") == 0);
    //  a provider's polls carry its auth header only
    assert (strcmp (rig_worker_field (worker, "headers.Authorization", text, sizeof text),
                    "Key k1") == 0);
    assert (!*rig_worker_field (worker, "headers.X-Other", text, sizeof text));
    assert (!*rig_worker_field (worker, "headers.AsyncQueue-Signal-Token", text, sizeof text));
    rig_worker_answer (worker,
                       "{\"statusCode\": 200, \"body\": \"{\\\"status\\\": \\\"COMPLETED\\\"}\"}");
    const bk_task_t *task = rig_core_is (rig, id, L);
    assert (task->poll.op_pending && task->poll.op_stage == BK_POLL_STATUS);
    rig_core_provider_reply (rig, id, "{\"state\": 1, \"fetchResult\": true}", NULL);
    rig_worker_expect (worker, id, "poll"); //  the result fetch, at once
    assert (strcmp (rig_worker_field (worker, "url", text, sizeof text),
                    "https://queue.fal.run/fal-ai/flux/requests/r1") == 0);
    rig_worker_answer (worker, "{\"statusCode\": 200, \"body\": \"{\\\"images\\\": [1]}\"}");
    rig_core_expect_events (rig, id, "");
    rig_core_provider_reply (rig, id, "{\"state\": 1}", NULL);
    task = rig_core_is (rig, id, C);
    assert (!task->error && task->deadline < 0 && !task->poll.cancel_owed);
    rig_core_get_shows (rig, id, "\"body\":\"{\\\"images\\\": [1]}\"");
    rig_core_expect_events (rig, id, "completed");

    //  its host fails (a crash, a hang): the task fails with why
    s_fal_polling (rig, worker, 60, id);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker, "{\"statusCode\": 200, \"body\": \"{}\"}");
    rig_core_provider_reply (rig, id, NULL,
                             "provider 'fal' crashed while reading the status answer");
    task = rig_core_is (rig, id, F);
    assert (strcmp (task->error, "provider 'fal' crashed while reading the status answer") == 0);
    rig_core_expect_events (rig, id, "failed");

    //  maxWaitTime passes: timeout, and the provider's cancel goes out
    s_fal_polling (rig, worker, 10, id);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker, "{\"statusCode\": 200, \"body\": \"{}\"}"); //  its op still pending
    rig_core_later (rig, 9000);
    rig_worker_expect (worker, id, "cancel");
    assert (worker->attempt == 0 && !worker->lease[0]);
    assert (strcmp (rig_worker_field (worker, "method", text, sizeof text), "PUT") == 0);
    assert (strcmp (rig_worker_field (worker, "url", text, sizeof text),
                    "https://queue.fal.run/fal-ai/flux/requests/r1/cancel") == 0);
    assert (strcmp (rig_worker_field (worker, "headers.Authorization", text, sizeof text),
                    "Key k1") == 0);
    task = rig_core_is (rig, id, T);
    assert (strcmp (task->error, "Task exceeded maxWaitTime of 10s") == 0);
    assert (!task->poll.cancel_owed && !task->poll.op_pending);
    char key[BK_POLL_KEY_SIZE];
    bk_poll_provider_key (task, key);
    rig_core_expect_events (rig, id, "timeout");
    rig_worker_answer (worker, "{\"statusCode\": 202}"); //  a cancel's result: fire and forget
    rig_core_is (rig, id, T);
    //  the op's reply comes after all: it no longer counts
    uint64_t dropped = rig->engine->stats.dropped;
    aq_node_t done = {.type = AQ_NODE_MAP};
    bk_results_provider_done (rig->results, key, &done, NULL);
    assert (rig->engine->stats.dropped == dropped + 1);
    rig_core_turn (rig);
    rig_core_is (rig, id, T);
    rig_core_expect_events (rig, id, "");
    rig_worker_bye (worker);
}

//  pending -> failed: the JOB cannot be made (a token its headers name was
//  deleted); nothing is sent
static void s_job_refused (rig_core_t *rig) {
    char id[AQ_UUID_TEXT], token[64], json[256];
    assert (rig_core_call (rig, AQ_CMD_TOKEN_CREATE,
                           "{\"key\": \"%s\", \"token\": {\"name\": \"k\", \"value\": \"v\"}}",
                           rig->key) == AQ_CREATED);
    aq_node_t made, value;
    assert (aq_node_get (&rig->body, "token", &made) && aq_node_get (&made, "id", &value) &&
            aq_node_strcpy (&value, token, sizeof token));
    snprintf (json, sizeof json,
              "{\"targetUrl\": \"http://t.test/x\", \"headers\": {\"Authorization\": \"%s\"}}",
              token);
    rig_core_created (rig, json, id);
    assert (rig_core_call (rig, AQ_CMD_TOKEN_DELETE, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           token) == AQ_OK);
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    assert (!rig_worker_job (worker));
    const bk_task_t *task = rig_core_is (rig, id, F);
    char error[96];
    snprintf (error, sizeof error, "Token %s not found", token);
    assert (strcmp (task->error, error) == 0 && task->attempts == 1 && task->retry_count == 0);
    rig_core_expect_events (rig, id, "pending failed");
    assert (rig_core_call (rig, AQ_CMD_TASK_ATTEMPTS, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    assert (rig_core_shows (rig, error));
    rig_worker_bye (worker);
}

static int s_cancel (rig_core_t *rig, const char *id) {
    return rig_core_call (rig, AQ_CMD_TASK_CANCEL, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                          id);
}

//  cancelled from pending, delayed, waiting and polling; refused from
//  processing and from the ends
static void s_cancelled (rig_core_t *rig) {
    char id[AQ_UUID_TEXT], when[32], json[256];
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": \"http://h.test/\"}", id);
    assert (rig_core_ready (rig, id));
    assert (s_cancel (rig, id) == AQ_OK && rig_core_shows (rig, "\"status\":\"cancelled\""));
    const bk_task_t *task = rig_core_is (rig, id, X);
    assert (task->completed_at == rig->now && !task->notify.active); //  no delivery owed
    assert (!rig_core_ready (rig, id));
    rig_core_expect_events (rig, id, "pending cancelled");
    assert (s_cancel (rig, id) == AQ_CONFLICT);
    assert (strcmp (rig->error, "Task cannot be cancelled in status cancelled") == 0);

    snprintf (json, sizeof json, "{\"targetUrl\": \"http://t.test/x\", \"delayUntil\": \"%s\"}",
              aq_time_format (rig->now + 60000, when));
    rig_core_created (rig, json, id);
    assert (s_cancel (rig, id) == AQ_OK);
    assert (!rig_core_timer (rig, BK_DELAY_TASK, id, -1));
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    rig_core_later (rig, 60000);
    assert (!rig_worker_job (worker));
    rig_core_is (rig, id, X);
    rig_core_expect_events (rig, id, "delayed cancelled");

    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", id);
    rig_worker_expect (worker, id, "");
    assert (s_cancel (rig, id) == AQ_CONFLICT);
    assert (strcmp (rig->error, "Task cannot be cancelled in status processing") == 0);
    rig_worker_answer (worker,
                       "{\"statusCode\": 202, \"headers\": {\"AsyncQueue-Wait\": \"true\"}}");
    assert (s_cancel (rig, id) == AQ_OK);
    task = rig_core_is (rig, id, X);
    assert (task->deadline < 0 && !task->signal[0]);
    assert (!rig_core_timer (rig, BK_DELAY_TIMEOUT, id, -1));
    rig_core_expect_events (rig, id, "pending processing waiting cancelled");
    assert (s_cancel (rig, id) == AQ_CONFLICT);
    //  another team's task is not found
    assert (rig_core_call (rig, AQ_CMD_TASK_CANCEL, "{\"key\": \"%s\", \"id\": \"%s\"}",
                           rig->other_key, id) == AQ_NOT_FOUND);
    assert (strcmp (rig->error, "Task not found") == 0);

    //  polling (a provider): its cancel goes out, its poll no longer counts
    s_fal_polling (rig, worker, 60, id);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_t *poller = worker;
    char lease[64];
    snprintf (lease, sizeof lease, "%s", worker->lease);
    int attempt = worker->attempt;
    assert (s_cancel (rig, id) == AQ_OK);
    rig_core_expect_events (rig, id, "cancelled");
    task = rig_core_is (rig, id, X);
    assert (task->poll.cancel_owed && !task->poll.inflight && task->deadline < 0);
    //  the poll's answer comes: dropped; the worker's slot frees and the cancel goes out
    uint64_t dropped = rig->engine->stats.dropped, refused = rig->engine->stats.refused_results;
    snprintf (json, sizeof json,
              "{\"kind\": \"poll\", \"attempt\": %d, \"lease\": \"%s\", \"statusCode\": 200}",
              attempt, lease);
    rig_worker_result (poller, json);
    rig_core_turn (rig);
    assert (rig->engine->stats.dropped == dropped + 1);
    assert (rig->engine->stats.refused_results == refused);
    rig_worker_expect (worker, id, "cancel");
    task = rig_core_is (rig, id, X);
    assert (!task->poll.cancel_owed);
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_expect_events (rig, id, "");
    rig_worker_bye (worker);
}

static int s_retry (rig_core_t *rig, const char *id) {
    return rig_core_call (rig, AQ_CMD_TASK_RETRY, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                          id);
}

//  failed -> pending and timeout -> pending (retried); the rest refused
static void s_retried (rig_core_t *rig) {
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 0}", id);
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 500}");
    rig_core_expect_events (rig, id, "pending processing failed");
    rig_worker_bye (worker);
    assert (s_retry (rig, id) == AQ_OK && rig_core_shows (rig, "\"status\":\"pending\""));
    assert (!strstr (rig->json, "\"error\"") && !strstr (rig->json, "\"result\""));
    const bk_task_t *task = rig_core_is (rig, id, P);
    assert (task->retry_count == 0 && !task->error && !task->result.size);
    assert (task->completed_at < 0 && task->attempts == 1);
    assert (rig_core_ready (rig, id));
    rig_core_expect_events (rig, id, "pending");
    assert (s_retry (rig, id) == AQ_CONFLICT);
    assert (strcmp (rig->error, "Task cannot be retried in status pending") == 0);
    worker = rig_core_worker (rig, NULL, 1);
    rig_worker_expect (worker, id, "");
    assert (worker->attempt == 2);
    rig_worker_answer (worker,
                       "{\"statusCode\": 202, \"headers\": {\"AsyncQueue-Wait\": \"true\"}}");
    rig_core_later (rig, 30000);
    rig_core_expect_events (rig, id, "processing waiting timeout");
    assert (s_retry (rig, id) == AQ_OK);
    rig_worker_expect (worker, id, ""); //  ready, and out again at once
    assert (worker->attempt == 3);
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_core_expect_events (rig, id, "pending processing completed");
    assert (s_retry (rig, id) == AQ_CONFLICT);
    assert (strcmp (rig->error, "Task cannot be retried in status completed") == 0);
    rig_worker_bye (worker);
}

//  onCompleteUrl: owed at the end, delivered; retried with back-off and
//  given up after four tries, at once when permanent; a lost worker's
//  delivery is retried
static void s_deliveries (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, NULL, 2);
    char id[AQ_UUID_TEXT], text[4096];
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": \"http://h.test/done\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_worker_expect (worker, id, "notify");
    assert (worker->attempt == 1 && strlen (worker->lease) == 32);
    assert (strcmp (rig_worker_field (worker, "url", text, sizeof text), "http://h.test/done") ==
            0);
    assert (strcmp (rig_worker_field (worker, "method", text, sizeof text), "POST") == 0);
    rig_worker_field (worker, "body", text, sizeof text);
    assert (strncmp (text, "{\"task\":{\"id\":\"", 15) == 0 &&
            strstr (text, "\"status\":\"completed\"") &&
            strstr (text, "\"onComplete\":{\"status\":\"pending\",\"attempts\":0}"));
    const bk_task_t *task = rig_core_is (rig, id, C);
    assert (task->notify.active && task->notify.inflight && task->notify.attempt == 1);
    assert (strcmp (task->notify.lease, worker->lease) == 0);
    assert (task->notify.due == rig->now + 45000 && task->on_complete.status == BK_OUTCOME_PENDING);
    assert (rig_core_timer (rig, BK_DELAY_NOTIFY, id, rig->now + 45000));
    rig_core_expect_events (rig, id, "pending processing completed");
    rig_core_later (rig, 7);
    rig_worker_answer (worker, "{\"statusCode\": 204}");
    task = rig_core_is (rig, id, C);
    assert (!task->notify.active && task->on_complete.status == BK_OUTCOME_DELIVERED);
    assert (task->on_complete.attempts == 1 && task->on_complete.status_code == 204);
    assert (task->on_complete.delivered_at == rig->now && !task->on_complete.error);
    rig_core_get_shows (
        rig, id,
        "\"onComplete\":{\"status\":\"delivered\",\"attempts\":1,\"statusCode\":204,"
        "\"deliveredAt\":\"");
    rig_core_later (rig, 45000); //  the watchdog falls due: stale, nothing is sent
    assert (!rig_worker_job (worker));
    rig_core_expect_events (rig, id, "");

    //  a failed task's delivery: retried after 1, 2, 4 s, then given up
    rig_core_created (rig,
                      "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 0, \"onCompleteUrl\": "
                      "\"http://h.test/done\"}",
                      id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 500}");
    static const char *const answers[] = {"{\"statusCode\": 500}", "{\"statusCode\": 302}",
                                          "{\"error\": \"fetch failed: ECONNRESET\"}"};
    int64_t waits[] = {1000, 2000, 4000};
    for (int i = 0; i < 3; i++) {
        rig_worker_expect (worker, id, "notify");
        assert (worker->attempt == i + 1);
        rig_worker_answer (worker, answers[i]);
        task = rig_core_is (rig, id, F);
        assert (task->on_complete.status == BK_OUTCOME_RETRYING);
        assert (task->on_complete.attempts == i + 1 && task->notify.active);
        assert (task->notify.due == rig->now + waits[i] && !task->notify.inflight);
        assert (rig_core_timer (rig, BK_DELAY_NOTIFY, id, rig->now + waits[i]));
        rig_core_later (rig, waits[i] - 1);
        assert (!rig_worker_job (worker));
        rig_core_later (rig, 1);
    }
    rig_core_get_shows (
        rig, id,
        "\"onComplete\":{\"status\":\"retrying\",\"attempts\":3,\"error\":\"fetch failed: "
        "ECONNRESET\"}");
    rig_worker_expect (worker, id, "notify");
    assert (worker->attempt == 4);
    rig_worker_answer (worker, "{\"statusCode\": 503}");
    task = rig_core_is (rig, id, F);
    assert (task->on_complete.status == BK_OUTCOME_FAILED && task->on_complete.attempts == 4);
    assert (strcmp (task->on_complete.error, "HTTP 503") == 0 && !task->notify.active);
    rig_core_later (rig, 3600000);
    assert (!rig_worker_job (worker));
    rig_core_expect_events (rig, id, "pending processing failed");

    //  permanent: given up at once
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": \"http://h.test/done\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_worker_expect (worker, id, "notify");
    rig_worker_answer (worker, "{\"error\": \"refused: a private address\", \"permanent\": true}");
    task = rig_core_is (rig, id, C);
    assert (task->on_complete.status == BK_OUTCOME_FAILED && task->on_complete.attempts == 1);

    //  the worker delivering goes silent: the delivery is retried
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": \"http://h.test/done\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_worker_expect (worker, id, "notify");
    worker->silent = true;
    rig_core_later (rig, 5001);
    task = rig_core_is (rig, id, C);
    assert (task->on_complete.status == BK_OUTCOME_RETRYING && task->notify.active);
    assert (strcmp (task->on_complete.error, "worker lost") == 0);
    rig_worker_vanish (worker);
    worker = rig_core_worker (rig, NULL, 1);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "notify");
    assert (worker->attempt == 2);
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    task = rig_core_is (rig, id, C);
    assert (task->on_complete.status == BK_OUTCOME_DELIVERED && task->on_complete.attempts == 2);
    rig_core_expect_events (rig, id, "pending processing completed");
    rig_worker_bye (worker);
}

//  --------------------------------------------------------------------------

static const struct {
    const char *name;
    void (*run) (rig_core_t *rig);
} s_steps[] = {
    {"created -> pending -> processing -> completed", s_call_completes},
    {"created -> delayed -> pending", s_delayed},
    {"processing -> delayed -> pending: back-off per strategy; -> failed", s_backoff},
    {"Retry-After, errors, permanent failures, no retries", s_retry_kinds},
    {"processing -> pending: lease lost, call refused; -> failed", s_lost},
    {"processing -> waiting -> completed, failed, timeout", s_waiting},
    {"processing -> polling (pollConfig) -> completed, failed, timeout", s_poll_config},
    {"processing -> polling (provider) -> completed, failed, timeout", s_provider},
    {"pending -> failed: the JOB cannot be made", s_job_refused},
    {"pending, delayed, waiting, polling -> cancelled", s_cancelled},
    {"failed, timeout -> pending (retried)", s_retried},
    {"onCompleteUrl: owed, delivered, retried, given up", s_deliveries},
};

void bk_engine_test (bool verbose) {
    rig_core_t *rig = rig_core_new ("engine", true);
    for (size_t i = 0; i < sizeof s_steps / sizeof *s_steps; i++) {
        if (verbose)
            printf ("bk_engine: %s\n", s_steps[i].name);
        s_steps[i].run (rig);
    }
    //  the changes seen are exactly the changes listed
    bool listed[BK_ST_COUNT][BK_ST_COUNT] = {{false}};
    for (size_t i = 0; i < sizeof s_changes / sizeof *s_changes; i++) {
        int from = s_changes[i].from, to = s_changes[i].to;
        listed[from][to] = true;
        if (!rig->transitions[from][to])
            fprintf (stderr, "bk_engine: no step makes %s -> %s (%s)\n",
                     from ? bk_status_name (from) : "created", bk_status_name (to),
                     s_changes[i].how);
        assert (rig->transitions[from][to]);
    }
    for (int from = 0; from < BK_ST_COUNT; from++)
        for (int to = 0; to < BK_ST_COUNT; to++) {
            if (rig->transitions[from][to] && !listed[from][to])
                fprintf (stderr, "bk_engine: %s -> %s happened but is not listed\n",
                         from ? bk_status_name (from) : "created", bk_status_name (to));
            assert (!rig->transitions[from][to] || listed[from][to]);
        }
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_engine: ok\n");
}
