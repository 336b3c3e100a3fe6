/*  bodies.c - fuzzes every REST body kind through the broker's own handlers

    Input: a selector byte, then a request body as a client sends it (JSON
    text). The body is parsed as the gateway parses it (gw_json_parse; what
    the gateway refuses ends there, the gateway harness covers it) and sent
    as the gateway sends it, under its member, to the broker's modules as
    the loop wires them (tests/rig_core.c: a test store, the engine, the
    scheduler, the handlers, one fake worker) with the team's full key:

        selector % 8   body      command           target
        0              task      TASK_CREATE       -
        1              schedule  SCHEDULE_CREATE   -
        2              schedule  SCHEDULE_UPDATE   a schedule made for it (PUT /tasks/:id)
        3              snooze    SCHEDULE_SNOOZE   a schedule made for it
        4              schedule  SCHEDULE_PREVIEW  - (POST /tasks/preview)
        5              event     EVENT_FIRE        -
        6              signal    TASK_SIGNAL       a task made for it, waiting for a signal
        7              token     TOKEN_CREATE      -

    Asserts: exactly one answer, with the request's corr (the rig checks
    the frame); no body makes a 5xx; a refusal's message reaches the client
    (fuzz_message_ok); a task or schedule accepted is stored with indexes
    that agree with it (rig_core_task) and reads back (GET). The rig's clock
    moves on a second per input, and the rig is made anew every 200 inputs
    (its store and worker credit stay small); a finding is replayed alone
    to check it does not depend on the inputs before it.
*/
#include "../rig_core.h"
#include "aq_json.h"
#include "aq_log.h"
#include "aq_proto.h"
#include "fuzz.h"
#include "json.h"

#include <libgen.h>
#include <limits.h>
#include <unistd.h>

#define S_FRESH 200 //  inputs before the rig is made anew

static rig_core_t *s_rig;
static rig_worker_t *s_worker;
static int s_inputs, s_rigs;

#define S_SCHEDULE                                                                                 \
    "{\"title\": \"fuzz\", \"description\": \"\", \"schedule_kind\": \"cron\", "                   \
    "\"schedule_expr\": \"*/15 * * * *\", "                                                        \
    "\"created_by\": \"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\", "                                   \
    "\"payload\": {\"steps\": [{\"targetUrl\": \"http://a.test/0\"}]}}"

static void s_fresh (void) {
    if (s_rig && s_inputs % S_FRESH)
        return;
    if (!s_rig) { //  the build's plugins beside the harness: $FUZZ_BUILD/plain/plugins
        char exe[PATH_MAX], dir[PATH_MAX + 32];
        ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
        FUZZ_CHECK (n > 0);
        exe[n] = '\0';
        snprintf (dir, sizeof dir, "%s/../plain/plugins", dirname (exe));
        setenv ("AQ_PLUGIN_DIR", dir, 0);
        aq_log_set_level (AQ_LOG_ERROR);
    }
    rig_core_destroy (&s_rig);
    char name[32];
    snprintf (name, sizeof name, "fuzz-%d", s_rigs++);
    s_rig = rig_core_new (name, true);
    s_worker = rig_core_worker (s_rig, NULL, 1000);
}

//  The id of the answer's "task" (a task or a schedule) into id; false if none.
static bool s_answer_id (char id[AQ_UUID_TEXT]) {
    aq_node_t task, value;
    return aq_node_get (&s_rig->body, "task", &task) && aq_node_get (&task, "id", &value) &&
           aq_node_strcpy (&value, id, AQ_UUID_TEXT);
}

//  A new schedule's id into id.
static void s_schedule (char id[AQ_UUID_TEXT]) {
    int status = rig_core_call (s_rig, AQ_CMD_SCHEDULE_CREATE,
                                "{\"key\": \"%s\", \"schedule\": " S_SCHEDULE "}", s_rig->key);
    if (status != AQ_CREATED)
        fprintf (stderr, "schedule: %d '%s'\n", status, s_rig->error);
    FUZZ_CHECK (status == AQ_CREATED && s_answer_id (id));
}

//  A new task waiting for a signal into id; false when the worker did not get it.
static bool s_waiting (char id[AQ_UUID_TEXT]) {
    rig_worker_drain (s_worker);
    rig_core_created (s_rig, "{\"targetUrl\": \"http://t.test/wait\"}", id);
    while (rig_worker_job (s_worker))
        if (strcmp (s_worker->id, id) == 0) {
            rig_worker_answer (
                s_worker, "{\"statusCode\": 202, \"headers\": {\"asyncqueue-wait\": \"true\"}}");
            rig_core_is (s_rig, id, BK_ST_WAITING);
            return true;
        }
    return false;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    static const struct {
        int cmd;
        const char *member;
    } kinds[] = {
        {AQ_CMD_TASK_CREATE, "task"},          {AQ_CMD_SCHEDULE_CREATE, "schedule"},
        {AQ_CMD_SCHEDULE_UPDATE, "schedule"},  {AQ_CMD_SCHEDULE_SNOOZE, "snooze"},
        {AQ_CMD_SCHEDULE_PREVIEW, "schedule"}, {AQ_CMD_EVENT_FIRE, "event"},
        {AQ_CMD_TASK_SIGNAL, "signal"},        {AQ_CMD_TOKEN_CREATE, "token"},
        {AQ_CMD_TASK_BATCH, "batch"},          {AQ_CMD_TASK_BULK, "bulk"},
        {AQ_CMD_FLOW_SET, "limits"},
    };
    if (size < 1)
        return 0;
    int kind = data[0] % (int) (sizeof kinds / sizeof kinds[0]);
    aq_writer_t w;
    aq_writer_init (&w);
    char error[GW_JSON_ERROR_MAX];
    if (gw_json_parse ((const char *) data + 1, size - 1, &w, error, sizeof error) != 0) {
        aq_writer_release (&w);
        return 0;
    }
    size_t body_size;
    const uint8_t *body_data = aq_writer_data (&w, &body_size);
    aq_node_t body;
    FUZZ_CHECK (aq_msg_parse (body_data, body_size, &body) == 0 && body.type == AQ_NODE_MAP);
    char *text = aq_json_dumps (&body);
    FUZZ_CHECK (text);
    aq_writer_release (&w);

    s_fresh ();
    s_inputs++;
    rig_core_advance (s_rig, 1000);
    char id[AQ_UUID_TEXT] = "";
    if (kinds[kind].cmd == AQ_CMD_SCHEDULE_UPDATE || kinds[kind].cmd == AQ_CMD_SCHEDULE_SNOOZE)
        s_schedule (id);
    if (kinds[kind].cmd == AQ_CMD_FLOW_SET)
        snprintf (id, sizeof id, "fuzz-key"); //  a flow control key's name
    if (kinds[kind].cmd == AQ_CMD_TASK_SIGNAL && !s_waiting (id)) {
        free (text);
        return 0;
    }
    int status;
    if (*id)
        status =
            rig_core_call (s_rig, kinds[kind].cmd, "{\"key\": \"%s\", \"id\": \"%s\", \"%s\": %s}",
                           s_rig->key, id, kinds[kind].member, text);
    else
        status = rig_core_call (s_rig, kinds[kind].cmd, "{\"key\": \"%s\", \"%s\": %s}", s_rig->key,
                                kinds[kind].member, text);
    free (text);
    if (status < 200 || status >= 500)
        fprintf (stderr, "answered %d '%s' %s\n", status, s_rig->error, s_rig->json);
    FUZZ_CHECK (status >= 200 && status < 500);
    if (status >= 400) {
        //  the error, or a batch's {"error": "tasks[i]: ...", "index": i} as the body
        aq_node_t error, index;
        char batch_error[512];
        const char *said = s_rig->error;
        if (!*said && kinds[kind].cmd == AQ_CMD_TASK_BATCH) {
            FUZZ_CHECK (aq_node_get (&s_rig->body, "error", &error) &&
                        aq_node_strcpy (&error, batch_error, sizeof batch_error) &&
                        aq_node_get (&s_rig->body, "index", &index) && index.type == AQ_NODE_INT);
            FUZZ_CHECK (strncmp (batch_error, "tasks[", 6) == 0);
            said = batch_error;
        }
        FUZZ_CHECK (*said && fuzz_message_ok (said));
        return 0;
    }
    //  accepted: stored as it says, and it reads back
    char made[AQ_UUID_TEXT];
    if (kinds[kind].cmd == AQ_CMD_TASK_CREATE) {
        FUZZ_CHECK (status == AQ_CREATED && s_answer_id (made));
        bk_task_t *task = rig_core_task (s_rig, made);
        FUZZ_CHECK (task);
        bk_task_destroy (&task);
        FUZZ_CHECK (rig_core_call (s_rig, AQ_CMD_TASK_GET, "{\"key\": \"%s\", \"id\": \"%s\"}",
                                   s_rig->key, made) == AQ_OK);
    } else if (kinds[kind].cmd == AQ_CMD_SCHEDULE_CREATE ||
               kinds[kind].cmd == AQ_CMD_SCHEDULE_UPDATE) {
        FUZZ_CHECK (s_answer_id (made) && (!*id || strcmp (made, id) == 0));
        FUZZ_CHECK (rig_core_call (s_rig, AQ_CMD_SCHEDULE_GET, "{\"key\": \"%s\", \"id\": \"%s\"}",
                                   s_rig->key, made) == AQ_OK);
    }
    return 0;
}
