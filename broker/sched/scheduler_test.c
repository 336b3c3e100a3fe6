/*  scheduler_test.c - the scheduled-task commands' selftest, against an engine over a test store
 */
#include "scheduler.h"
#include "../delay.h"
#include "aq_json.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "runs.h"
#include "sched_task.h"
#include "schedule.h"
#include "schedules.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  --------------------------------------------------------------------------
//  Selftest: the commands against an engine over a test store, their
//  answers read back as the client gets them (a DEALER behind the outbox's
//  ROUTER), and fire times through the engine's delay queue.

typedef struct {
    void *ctx, *router, *dealer; //  the client's side is the dealer
    bk_outbox_t *outbox;         //  no events sockets
    bk_engine_t *engine;         //  over a test store
    bk_scheduler_t *scheduler;   //  the one tested
    uint8_t team[16];            //  the caller's team
    int64_t corr;                //  the last request's
    uint8_t frame[65536];        //  the last answer
    aq_node_t body;              //  its body (nil when none)
    char error[256];             //  its error ("" when none)
    char json[8192];             //  its body as JSON text
} s_rig_t;

//  Sends cmd with the fields of json (a JSON object, "%s" replaced by
//  arg) and reads the answer into rig; returns its status.
static int s_call (s_rig_t *rig, int cmd, const char *json, const char *arg) {
    char text[2048];
    snprintf (text, sizeof text, json, arg ? arg : "");
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (text, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_req_t req = {.outbox = rig->outbox,
                    .socket = rig->router,
                    .rid = (const uint8_t *) "peer",
                    .rid_size = 4,
                    .corr = ++rig->corr};
    assert (aq_msg_parse (data, size, &req.body) == 0);
    memcpy (req.team, rig->team, 16);
    bk_scheduler_command (rig->scheduler, &req, cmd);
    aq_writer_release (&w);
    assert (bk_outbox_size (rig->outbox) == 1); //  answered exactly once
    assert (bk_outbox_flush (rig->outbox, true) == 0);
    int got = zmq_recv (rig->dealer, rig->frame, sizeof rig->frame, 0);
    assert (got > AQ_PROTO_HEADER && got <= (int) sizeof rig->frame);
    aq_node_t reply, value;
    assert (aq_msg_parse (rig->frame + 4, (size_t) got - 4, &reply) == 0);
    assert (aq_node_get (&reply, "corr", &value) && value.i == rig->corr);
    rig->json[0] = rig->error[0] = '\0';
    if (aq_node_get (&reply, "body", &rig->body)) {
        char *body = aq_json_dumps (&rig->body);
        assert (body && strlen (body) < sizeof rig->json);
        strcpy (rig->json, body);
        free (body);
    } else
        rig->body.type = AQ_NODE_NIL;
    if (aq_node_get (&reply, "error", &value))
        assert (aq_node_strcpy (&value, rig->error, sizeof rig->error));
    assert (aq_node_get (&reply, "status", &value));
    return (int) value.i;
}

//  The answer's body holds text (a piece of its JSON).
static bool s_shows (s_rig_t *rig, const char *text) {
    if (strstr (rig->json, text))
        return true;
    fprintf (stderr, "bk_scheduler: %s lacks %s\n", rig->json, text);
    return false;
}

//  The answer is status with exactly error.
static bool s_refused (s_rig_t *rig, int cmd, const char *json, const char *arg, int status,
                       const char *error) {
    int got = s_call (rig, cmd, json, arg);
    if (got == status && strcmp (rig->error, error) == 0)
        return true;
    fprintf (stderr, "bk_scheduler: %s: %d %s\n", json, got, rig->error);
    return false;
}

//  Moves the clock to iso and handles what fell due.
static void s_at (s_rig_t *rig, const char *iso) {
    int64_t ms;
    assert (aq_time_parse (iso, &ms) == 0);
    bk_engine_clock (rig->engine, ms, 0);
    bk_engine_promote_due (rig->engine);
}

//  The runs of schedule id; returns pagination.total.
static int64_t s_runs_total (s_rig_t *rig, const char *id) {
    assert (s_call (rig, AQ_CMD_SCHEDULE_RUNS, "{\"id\": \"%s\"}", id) == AQ_OK);
    const char *total = strstr (rig->json, "\"total\":");
    assert (total);
    return atoll (total + 8);
}

#define S_PIPELINE                                                                                 \
    "{\"schedule\": {\"title\": \"report\", \"description\": \"\", \"schedule_kind\": \"cron\", "  \
    "\"schedule_expr\": \"*/15 * * * *\", \"created_by\": "                                        \
    "\"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\", "                                                   \
    "\"payload\": {\"steps\": [{\"targetUrl\": \"http://a/0\"}, {\"targetUrl\": "                  \
    "\"http://a/1\"%s}]}}}"

static void s_test_commands (s_rig_t *rig) {
    s_at (rig, "2024-01-15T10:30:00Z");
    //  every step checked as POST /v1/tasks would, with its index
    assert (s_refused (rig, AQ_CMD_SCHEDULE_CREATE, S_PIPELINE, ", \"priority\": 0", AQ_BAD_REQUEST,
                       "payload.steps[1]: priority must be an integer between 1 and 10"));
    assert (s_refused (rig, AQ_CMD_SCHEDULE_CREATE, "{\"schedule\": 7}", NULL, AQ_BAD_REQUEST,
                       "Request body must be a JSON object"));
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, S_PIPELINE, "") == AQ_CREATED);
    assert (s_shows (rig, "\"status\":\"active\",\"next_run_at\":\"2024-01-15T10:45:00.000Z\""));
    char id[AQ_UUID_TEXT];
    const char *at = strstr (rig->json, "{\"task\":{\"id\":\"");
    assert (at && snprintf (id, sizeof id, "%.36s", at + 15) == 36);
    //  another team's is not found
    uint8_t team[16];
    memcpy (team, rig->team, 16);
    aq_uuid_new (rig->team);
    assert (s_refused (rig, AQ_CMD_SCHEDULE_GET, "{\"id\": \"%s\"}", id, AQ_NOT_FOUND,
                       "Task not found"));
    memcpy (rig->team, team, 16);
    assert (s_refused (rig, AQ_CMD_SCHEDULE_GET, "{\"id\": \"x\"}", NULL, AQ_NOT_FOUND,
                       "Task not found"));

    //  the fire time comes: a run, and the next fire time
    s_at (rig, "2024-01-15T10:45:00.250Z");
    assert (s_runs_total (rig, id) == 1);
    assert (s_shows (rig,
                     "\"trigger\":\"schedule\",\"status\":\"running\",\"attempt\":1,"
                     "\"step\":0,\"steps_total\":2,\"scheduled_at\":\"2024-01-15T10:45:00.000Z\","
                     "\"started_at\":\"2024-01-15T10:45:00.250Z\""));
    assert (s_call (rig, AQ_CMD_SCHEDULE_GET, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_shows (rig, "\"next_run_at\":\"2024-01-15T11:00:00.000Z\",\"last_run_at\":"
                          "\"2024-01-15T10:45:00.250Z\""));
    //  paused over two fire times, resumed: one run at once, then the schedule
    assert (s_call (rig, AQ_CMD_SCHEDULE_PAUSE, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_shows (rig, "\"status\":\"paused\""));
    s_at (rig, "2024-01-15T11:20:00Z");
    assert (s_runs_total (rig, id) == 1);
    assert (s_call (rig, AQ_CMD_SCHEDULE_RESUME, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_shows (rig, "\"status\":\"active\",\"next_run_at\":\"2024-01-15T11:20:00.000Z\""));
    s_at (rig, "2024-01-15T11:20:00Z");
    assert (s_runs_total (rig, id) == 2);
    assert (s_shows (rig, "\"scheduled_at\":\"2024-01-15T11:20:00.000Z\""));
    //  snoozed: the next fire time moves to its end, a PUT keeps it there
    assert (s_call (rig, AQ_CMD_SCHEDULE_SNOOZE,
                    "{\"id\": \"%s\", \"snooze\": {\"delay_seconds\": 3600, \"reason\": \"r\"}}",
                    id) == AQ_OK);
    assert (s_shows (rig, "\"next_run_at\":\"2024-01-15T12:20:00.000Z\",\"last_run_at\":"
                          "\"2024-01-15T11:20:00.000Z\",\"snoozed_until\":\"2024-01-15T12:20:00."
                          "000Z\",\"snooze_reason\":\"r\""));
    assert (s_refused (rig, AQ_CMD_SCHEDULE_SNOOZE, "{\"id\": \"%s\", \"snooze\": {}}", id,
                       AQ_BAD_REQUEST, "delay_seconds is required"));
    s_at (rig, "2024-01-15T11:30:00Z");
    assert (s_runs_total (rig, id) == 2);
    assert (s_call (rig, AQ_CMD_SCHEDULE_UPDATE,
                    "{\"id\": \"%s\", \"schedule\": {\"schedule_expr\": \"0 * * * *\"}}",
                    id) == AQ_OK);
    assert (s_shows (rig, "\"schedule_expr\":\"0 * * * *\"") &&
            s_shows (rig, "\"next_run_at\":\"2024-01-15T12:20:00.000Z\""));
    //  previews: of the stored schedule, and of one given
    assert (s_call (rig, AQ_CMD_SCHEDULE_PREVIEW, "{\"id\": \"%s\", \"count\": \"2\"}", id) ==
            AQ_OK);
    assert (strcmp (rig->json, "{\"schedule_kind\":\"cron\",\"schedule_expr\":\"0 * * * *\","
                               "\"timezone\":\"UTC\",\"fire_times\":[\"2024-01-15T12:00:00.000Z\","
                               "\"2024-01-15T13:00:00.000Z\"]}") == 0);
    assert (s_call (rig, AQ_CMD_SCHEDULE_PREVIEW,
                    "{\"schedule\": {\"schedule_kind\": \"event\", \"count\": 3}}", NULL) == AQ_OK);
    assert (strcmp (rig->json, "{\"schedule_kind\":\"event\",\"schedule_expr\":null,"
                               "\"timezone\":\"UTC\",\"fire_times\":[]}") == 0);
    assert (s_refused (rig, AQ_CMD_SCHEDULE_PREVIEW, "{\"schedule\": {\"timezone\": \"UTC\"}}",
                       NULL, AQ_BAD_REQUEST, "schedule_kind is required"));
    assert (s_refused (rig, AQ_CMD_SCHEDULE_PREVIEW, "{\"id\": \"%s\", \"count\": 1001}", id,
                       AQ_BAD_REQUEST, "count must be a number between 1 and 1000"));
    //  lists
    assert (s_call (rig, AQ_CMD_SCHEDULE_LIST, "{\"status\": \"paused\"}", NULL) == AQ_OK);
    assert (s_shows (rig, "{\"tasks\":[],\"pagination\":{\"total\":0,\"limit\":50,"));
    assert (s_call (rig, AQ_CMD_SCHEDULE_LIST, "{\"schedule_kind\": \"cron\", \"limit\": \"1\"}",
                    NULL) == AQ_OK);
    assert (s_shows (rig, id) && s_shows (rig, "\"total\":1,\"limit\":1,\"offset\":0,"
                                               "\"has_more\":false,\"hasMore\":false}"));
    assert (s_refused (rig, AQ_CMD_SCHEDULE_LIST, "{\"status\": \"done\"}", NULL, AQ_BAD_REQUEST,
                       "status must be one of: active, paused, canceled"));
    //  canceled: nothing runs, and nothing changes it
    assert (s_call (rig, AQ_CMD_SCHEDULE_CANCEL, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_shows (rig, "\"status\":\"canceled\",\"next_run_at\":null"));
    s_at (rig, "2024-01-15T13:00:00Z");
    assert (s_runs_total (rig, id) == 2);
    assert (s_refused (rig, AQ_CMD_SCHEDULE_RUN_NOW, "{\"id\": \"%s\"}", id, AQ_CONFLICT,
                       "Task cannot be run in status canceled"));
    assert (s_refused (rig, AQ_CMD_SCHEDULE_UPDATE, "{\"id\": \"%s\", \"schedule\": {}}", id,
                       AQ_CONFLICT, "Task cannot be updated in status canceled"));
}

static void s_test_events (s_rig_t *rig) {
    const char *body = "{\"schedule\": {\"title\": \"e\", \"description\": \"\", "
                       "\"schedule_kind\": \"event\", \"schedule_expr\": \"deploy\", "
                       "\"created_by\": \"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\", "
                       "\"payload\": {\"targetUrl\": \"http://e\"}%s}}";
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, body, "") == AQ_CREATED);
    assert (s_shows (rig, "\"next_run_at\":null"));
    char id[AQ_UUID_TEXT];
    snprintf (id, sizeof id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, body, ", \"dedupe_key\": \"d\"") == AQ_CREATED);
    assert (s_call (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"name\": \"deploy\", \"data\": [1]}}",
                    NULL) == AQ_OK);
    assert (s_shows (rig, "{\"event\":{\"name\":\"deploy\",\"matched\":2},\"runs\":[{"));
    assert (s_shows (rig, "\"event\":{\"name\":\"deploy\",\"data\":[1]}"));
    assert (s_call (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"name\": \"deploy\"}}", NULL) == AQ_OK);
    assert (s_shows (rig, "\"status\":\"skipped\"") && s_shows (rig, "\"error\":\"deduplicated\""));
    assert (s_shows (rig, "\"event\":{\"name\":\"deploy\",\"data\":null}"));
    assert (s_call (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"name\": \"other\"}}", NULL) == AQ_OK);
    assert (strcmp (rig->json, "{\"event\":{\"name\":\"other\",\"matched\":0},\"runs\":[]}") == 0);
    assert (s_refused (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"name\": \"\"}}", NULL,
                       AQ_BAD_REQUEST, "name must be a string of 1 to 200 characters"));
    assert (s_refused (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"nom\": 1}}", NULL, AQ_BAD_REQUEST,
                       "Unknown field: nom"));
    //  paused: no event run; run_now still
    assert (s_call (rig, AQ_CMD_SCHEDULE_PAUSE, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_call (rig, AQ_CMD_EVENT_FIRE, "{\"event\": {\"name\": \"deploy\"}}", NULL) == AQ_OK);
    assert (s_shows (rig, "\"matched\":1"));
    assert (s_call (rig, AQ_CMD_SCHEDULE_RUN_NOW, "{\"id\": \"%s\"}", id) == AQ_CREATED);
    assert (s_shows (rig, "{\"run\":{\"id\":") && s_shows (rig, "\"trigger\":\"run_now\""));
    assert (s_runs_total (rig, id) == 3); //  two events, then run_now
}

//  The creator's trace context goes with the scheduled task (a PUT's does
//  not change it) to its runs' step tasks.
static void s_test_trace (s_rig_t *rig) {
    const char *body = "{\"schedule\": {\"title\": \"t\", \"description\": \"\", "
                       "\"schedule_kind\": \"event\", \"schedule_expr\": \"traced\", "
                       "\"created_by\": \"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\", "
                       "\"payload\": {\"targetUrl\": \"http://t\"}}%s}";
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, body,
                    ", \"traceparent\": "
                    "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\", "
                    "\"tracestate\": \"congo=t61rcWkgMzE\"") == AQ_CREATED);
    assert (!strstr (rig->json, "4bf92f3577b34da6a3ce929d0e0e4736")); //  not in its shape
    char id[AQ_UUID_TEXT];
    snprintf (id, sizeof id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    assert (s_call (rig, AQ_CMD_SCHEDULE_UPDATE,
                    "{\"id\": \"%s\", \"schedule\": {\"title\": \"u\"}, \"traceparent\": "
                    "\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}",
                    id) == AQ_OK);
    uint8_t uuid[16];
    assert (aq_uuid_parse (id, uuid) == 0);
    bk_store_t *store = bk_engine_store (rig->engine);
    bk_sched_task_t *record = bk_schedules_get (store, uuid);
    assert (record && record->trace.trace_id[0] == 0x4b && record->trace.parent[0] == 0x00);
    assert (strcmp (record->trace_state, "congo=t61rcWkgMzE") == 0);
    bk_sched_task_destroy (&record);
    assert (s_call (rig, AQ_CMD_SCHEDULE_RUN_NOW, "{\"id\": \"%s\"}", id) == AQ_CREATED);
    char run_id[AQ_UUID_TEXT];
    snprintf (run_id, sizeof run_id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    assert (aq_uuid_parse (run_id, uuid) == 0);
    bk_sched_run_t *run = bk_schedules_run (store, uuid);
    assert (run && run->nsteps == 1);
    bk_task_t *task = bk_engine_load (rig->engine, run->steps[0].task);
    assert (task && task->trace.trace_id[0] == 0x4b && task->trace.parent[7] == 0xb7);
    assert (strcmp (task->trace_state, "congo=t61rcWkgMzE") == 0);
    bk_task_destroy (&task);
    bk_sched_run_destroy (&run);

    //  none, or a malformed one: each run a trace of its own (its id)
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, body, ", \"traceparent\": \"00-XYZ\"") ==
            AQ_CREATED);
    snprintf (id, sizeof id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    assert (s_call (rig, AQ_CMD_SCHEDULE_RUN_NOW, "{\"id\": \"%s\"}", id) == AQ_CREATED);
    snprintf (run_id, sizeof run_id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    assert (aq_uuid_parse (run_id, uuid) == 0);
    run = bk_schedules_run (store, uuid);
    assert (run && run->nsteps == 1 && !bk_trace_known (&run->trace));
    task = bk_engine_load (rig->engine, run->steps[0].task);
    assert (task && memcmp (task->trace.trace_id, uuid, 16) == 0 && !task->trace_state);
    bk_task_destroy (&task);
    bk_sched_run_destroy (&run);
}

//  A fire whose next search runs out of work goes on a second later.
static void s_test_seek (s_rig_t *rig) {
    s_at (rig, "2024-01-15T10:30:00Z");
    const char *body =
        "{\"schedule\": {\"title\": \"s\", \"description\": \"\", "
        "\"schedule_kind\": \"rrule\", \"schedule_expr\": \"DTSTART:20240114T103000Z "
        "RRULE:FREQ=MINUTELY;COUNT=100000;BYSECOND=0\", \"created_by\": "
        "\"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\", \"payload\": {\"targetUrl\": "
        "\"http://s\"}}}";
    assert (s_call (rig, AQ_CMD_SCHEDULE_CREATE, body, NULL) == AQ_CREATED);
    assert (s_shows (rig, "\"next_run_at\":\"2024-01-15T10:31:00.000Z\""));
    char id[AQ_UUID_TEXT];
    snprintf (id, sizeof id, "%.36s", strstr (rig->json, "\"id\":\"") + 6);
    //  five days later: the run, then a search past 7,000 occurrences
    s_at (rig, "2024-01-20T10:30:00Z");
    assert (s_runs_total (rig, id) == 1);
    assert (s_call (rig, AQ_CMD_SCHEDULE_GET, "{\"id\": \"%s\"}", id) == AQ_OK);
    assert (s_shows (rig, "\"next_run_at\":null,\"last_run_at\":\"2024-01-20T10:30:00.000Z\""));
    int seeks = 0;
    for (int64_t at = 1705746600000 + 1000; strstr (rig->json, "\"next_run_at\":null");
         at += 1000) {
        char iso[32];
        s_at (rig, aq_time_format (at, iso));
        assert (s_call (rig, AQ_CMD_SCHEDULE_GET, "{\"id\": \"%s\"}", id) == AQ_OK);
        assert (++seeks < 5);
    }
    assert (s_shows (rig, "\"next_run_at\":\"2024-01-20T10:31:00.000Z\""));
    assert (s_runs_total (rig, id) == 1); //  going on is no run
}

void bk_scheduler_test (bool verbose) {
    s_rig_t *rig = calloc (1, sizeof *rig);
    assert (rig);
    rig->ctx = zmq_ctx_new ();
    rig->router = zmq_socket (rig->ctx, ZMQ_ROUTER);
    rig->dealer = zmq_socket (rig->ctx, ZMQ_DEALER);
    assert (zmq_setsockopt (rig->dealer, ZMQ_ROUTING_ID, "peer", 4) == 0);
    assert (zmq_bind (rig->router, "inproc://scheduler-test") == 0);
    assert (zmq_connect (rig->dealer, "inproc://scheduler-test") == 0);
    assert (zmq_send (rig->dealer, "x", 1, 0) == 1); //  the router learns the dealer's id
    char buf[8];
    assert (zmq_recv (rig->router, buf, sizeof buf, 0) == 4 &&
            zmq_recv (rig->router, buf, sizeof buf, 0) == 1);
    rig->outbox = bk_outbox_new (NULL, 0);
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_config_t cfg;
    bk_config_defaults (&cfg);
    rig->engine = bk_engine_new (&cfg, store, rig->outbox, NULL);
    rig->scheduler = bk_scheduler_new (rig->engine);
    aq_uuid_new (rig->team);

    s_test_commands (rig);
    s_test_events (rig);
    s_test_seek (rig);
    s_test_trace (rig);

    bk_scheduler_destroy (&rig->scheduler);
    assert (!rig->scheduler && !rig->engine->due_hook);
    bk_engine_destroy (&rig->engine);
    bk_store_test_destroy (&store, dir);
    bk_outbox_destroy (&rig->outbox);
    zmq_close (rig->router), zmq_close (rig->dealer);
    zmq_ctx_term (rig->ctx);
    free (rig);
    if (verbose)
        printf ("bk_scheduler: ok\n");
}
