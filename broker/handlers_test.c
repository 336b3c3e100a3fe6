/*  handlers_test.c - the handlers' selftest over rig_core: the access
    table, then a few commands end to end (the task states themselves:
    engine_test.c)
*/
#include "handlers.h"
#include "../tests/rig_core.h"
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Who the test expects may send each client command (the table above
//  must agree).
static const struct {
    int cmd;
    bk_access_t access;
} s_expected[] = {
    {AQ_CMD_TASK_CREATE, BK_ACCESS_WRITE},
    {AQ_CMD_TASK_BATCH, BK_ACCESS_WRITE},
    {AQ_CMD_TASK_BULK, BK_ACCESS_WRITE},
    {AQ_CMD_BULK_GET, BK_ACCESS_READ},
    {AQ_CMD_TASK_GET, BK_ACCESS_READ},
    {AQ_CMD_TASK_LIST, BK_ACCESS_READ},
    {AQ_CMD_TASK_CANCEL, BK_ACCESS_WRITE},
    {AQ_CMD_TASK_RETRY, BK_ACCESS_WRITE},
    {AQ_CMD_TASK_ATTEMPTS, BK_ACCESS_READ},
    {AQ_CMD_TASK_SIGNAL, BK_ACCESS_WRITE},
    {AQ_CMD_TOKEN_CREATE, BK_ACCESS_WRITE},
    {AQ_CMD_TOKEN_LIST, BK_ACCESS_READ},
    {AQ_CMD_TOKEN_DELETE, BK_ACCESS_WRITE},
    {AQ_CMD_AUTH, BK_ACCESS_READ},
    {AQ_CMD_STATS, BK_ACCESS_READ},
    {AQ_CMD_TEAM_CREATE, BK_ACCESS_ADMIN},
    {AQ_CMD_TEAM_LIST, BK_ACCESS_ADMIN},
    {AQ_CMD_KEY_CREATE, BK_ACCESS_ADMIN},
    {AQ_CMD_KEY_LIST, BK_ACCESS_ADMIN},
    {AQ_CMD_KEY_REVOKE, BK_ACCESS_ADMIN},
    {AQ_CMD_TEAM_SECRET, BK_ACCESS_ADMIN},
    {AQ_CMD_TEAM_LIMIT, BK_ACCESS_ADMIN},
    {AQ_CMD_SCHEDULE_CREATE, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_LIST, BK_ACCESS_READ},
    {AQ_CMD_SCHEDULE_GET, BK_ACCESS_READ},
    {AQ_CMD_SCHEDULE_UPDATE, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_RUN_NOW, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_SNOOZE, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_PAUSE, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_RESUME, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_CANCEL, BK_ACCESS_WRITE},
    {AQ_CMD_SCHEDULE_RUNS, BK_ACCESS_READ},
    {AQ_CMD_SCHEDULE_PREVIEW, BK_ACCESS_READ},
    {AQ_CMD_EVENT_FIRE, BK_ACCESS_WRITE},
    {AQ_CMD_FLOW_LIST, BK_ACCESS_READ},
    {AQ_CMD_FLOW_GET, BK_ACCESS_READ},
    {AQ_CMD_FLOW_SET, BK_ACCESS_WRITE},
    {AQ_CMD_FLOW_PAUSE, BK_ACCESS_WRITE},
    {AQ_CMD_FLOW_RESUME, BK_ACCESS_WRITE},
};

//  The answer is status with exactly error.
static bool s_refused (rig_core_t *rig, int status, const char *error) {
    if (rig->status == status && strcmp (rig->error, error) == 0)
        return true;
    fprintf (stderr, "bk_handlers: %d '%s', want %d '%s'\n", rig->status, rig->error, status,
             error);
    return false;
}

//  Every command with every kind of credential: refused with the seed's
//  messages, or let through to its handler (which answers anything else).
static void s_test_access (rig_core_t *rig) {
    size_t routes;
    bk_handlers_access (0, &routes);
    assert (routes == sizeof s_expected / sizeof *s_expected);
    for (size_t i = 0; i < routes; i++) {
        int cmd = s_expected[i].cmd;
        bk_access_t access = s_expected[i].access;
        int table = bk_handlers_access (cmd, NULL); //  the table agrees
        assert (table == (int) access || (table == BK_ACCESS_OWN && access != BK_ACCESS_ADMIN));
        if (access == BK_ACCESS_ADMIN) {
            rig_core_call (rig, cmd, "{\"key\": \"%s\"}", rig->key);
            assert (s_refused (rig, AQ_UNAUTH, "Admin token required"));
            rig_core_call (rig, cmd, "{\"admin\": \"%s\"}", rig->key);
            assert (s_refused (rig, AQ_UNAUTH, "Invalid admin token"));
            rig_core_call (rig, cmd, "{\"admin\": \"%s\"}", RIG_CORE_ADMIN);
            assert (rig->status != AQ_UNAUTH && rig->status != AQ_FORBIDDEN);
            continue;
        }
        rig_core_call (rig, cmd, "{}");
        assert (s_refused (rig, AQ_UNAUTH, "API key required"));
        rig_core_call (rig, cmd, "{\"key\": \"\"}");
        assert (s_refused (rig, AQ_UNAUTH, "API key required"));
        rig_core_call (rig, cmd, "{\"key\": \"aq_0123456789abcdef_nope\"}");
        assert (s_refused (rig, AQ_UNAUTH, "Invalid or revoked API key"));
        rig_core_call (rig, cmd, "{\"admin\": \"%s\"}", RIG_CORE_ADMIN);
        assert (cmd == AQ_CMD_STATS ? rig->status == AQ_OK
                                    : s_refused (rig, AQ_UNAUTH, "API key required"));
        rig_core_call (rig, cmd, "{\"key\": \"%s\"}", rig->read_key);
        if (access == BK_ACCESS_WRITE)
            assert (s_refused (rig, AQ_FORBIDDEN, "Access denied"));
        else
            assert (rig->status != AQ_UNAUTH && rig->status != AQ_FORBIDDEN);
        rig_core_call (rig, cmd, "{\"key\": \"%s\"}", rig->key);
        assert (rig->status != AQ_UNAUTH && rig->status != AQ_FORBIDDEN);
    }
    //  a command that is no client's: an ERROR echoing corr
    uint64_t malformed = rig->engine->stats.malformed;
    assert (rig_core_call (rig, AQ_CMD_READY, "{\"credit\": 1}") == AQ_BAD_REQUEST);
    assert (strcmp (rig->error, "unexpected command on the client socket") == 0);
    assert (rig->answer_corr == rig->corr && rig->engine->stats.malformed == malformed + 1);
    //  a revoked key is refused at once
    char key_id[BK_KEY_ID_HEX + 1];
    snprintf (key_id, sizeof key_id, "%s", rig->read_key + 3);
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->read_key) == AQ_OK);
    assert (rig_core_shows (rig, "\"scope\":\"read\""));
    assert (rig_core_call (rig, AQ_CMD_KEY_REVOKE, "{\"admin\": \"%s\", \"id\": \"%s\"}",
                           RIG_CORE_ADMIN, key_id) == AQ_OK);
    rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->read_key);
    assert (s_refused (rig, AQ_UNAUTH, "Invalid or revoked API key"));
}

//  Another team's task is not found, whatever the command
static void s_test_teams (rig_core_t *rig) {
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", id);
    static const int cmds[] = {AQ_CMD_TASK_GET, AQ_CMD_TASK_CANCEL, AQ_CMD_TASK_RETRY,
                               AQ_CMD_TASK_ATTEMPTS, AQ_CMD_TASK_SIGNAL};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        rig_core_call (rig, cmds[i],
                       "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": \"failed\"}}",
                       rig->other_key, id);
        assert (s_refused (rig, AQ_NOT_FOUND, "Task not found"));
        rig_core_call (rig, cmds[i], "{\"key\": \"%s\", \"id\": \"not-an-id\"}", rig->key);
        assert (s_refused (rig, AQ_NOT_FOUND, "Task not found"));
    }
    assert (rig_core_call (rig, AQ_CMD_TASK_LIST, "{\"key\": \"%s\"}", rig->other_key) == AQ_OK);
    assert (rig_core_shows (rig, "\"tasks\":[]") && rig_core_shows (rig, "\"total\":0"));
    rig_core_is (rig, id, BK_ST_PENDING);
}

static void s_test_commands (rig_core_t *rig) {
    char id[AQ_UUID_TEXT], again[AQ_UUID_TEXT], idem[300];
    //  create: the request's own messages; an Idempotency-Key replays for a day
    rig_core_call (rig, AQ_CMD_TASK_CREATE, "{\"key\": \"%s\"}", rig->key);
    assert (s_refused (rig, AQ_BAD_REQUEST, "Request body must be a JSON object"));
    rig_core_call (rig, AQ_CMD_TASK_CREATE, "{\"key\": \"%s\", \"task\": {\"method\": \"GET\"}}",
                   rig->key);
    assert (s_refused (rig, AQ_BAD_REQUEST, "targetUrl is required"));
    rig_core_call (rig, AQ_CMD_TASK_CREATE,
                   "{\"key\": \"%s\", \"task\": {\"targetUrl\": \"http://t.test/\", \"provider\": "
                   "\"nope\"}}",
                   rig->key);
    assert (s_refused (rig, AQ_BAD_REQUEST, "Unknown provider: nope. Loaded providers: none"));
    rig_core_call (rig, AQ_CMD_TASK_CREATE,
                   "{\"key\": \"%s\", \"task\": {\"targetUrl\": \"http://t.test/\", \"headers\": "
                   "{\"A\": \"tok_0123456789abcdef0123456789abcdef\"}}}",
                   rig->key);
    assert (s_refused (rig, AQ_BAD_REQUEST, "Unknown token: tok_0123456789abcdef0123456789abcdef"));
    static const char *const create = "{\"key\": \"%s\", \"idem\": \"%s\", \"task\": "
                                      "{\"targetUrl\": \"http://t.test/idem\"}}";
    assert (rig_core_call (rig, AQ_CMD_TASK_CREATE, create, rig->key, "k1") == AQ_CREATED);
    aq_node_t task, value;
    assert (aq_node_get (&rig->body, "task", &task) && aq_node_get (&task, "id", &value) &&
            aq_node_strcpy (&value, id, sizeof id));
    rig_core_advance (rig, 24 * 3600000LL - 1);
    assert (rig_core_call (rig, AQ_CMD_TASK_CREATE, create, rig->key, "k1") == AQ_OK);
    assert (rig_core_shows (rig, id));
    assert (rig_core_call (rig, AQ_CMD_TASK_CREATE, create, rig->other_key, "k1") == AQ_CREATED);
    assert (!strstr (rig->json, id));
    rig_core_advance (rig, 1);
    assert (rig_core_call (rig, AQ_CMD_TASK_CREATE, create, rig->key, "k1") == AQ_CREATED);
    assert (aq_node_get (&rig->body, "task", &task) && aq_node_get (&task, "id", &value) &&
            aq_node_strcpy (&value, again, sizeof again) && strcmp (again, id) != 0);
    memset (idem, 'k', 256);
    idem[256] = '\0';
    rig_core_call (rig, AQ_CMD_TASK_CREATE, create, rig->key, idem);
    assert (s_refused (rig, AQ_BAD_REQUEST, "Idempotency-Key must be at most 255 characters"));

    //  list: filters and pages, with the seed's messages
    assert (rig_core_call (rig, AQ_CMD_TASK_LIST,
                           "{\"key\": \"%s\", \"status\": \"pending\", \"limit\": \"1\", "
                           "\"sortOrder\": \"asc\"}",
                           rig->key) == AQ_OK);
    assert (rig_core_shows (rig, "\"pagination\":{\"total\":3,\"limit\":1,\"offset\":0,"
                                 "\"hasMore\":true}"));
    static const struct {
        const char *fields, *error;
    } lists[] = {
        {"\"status\": \"done\"", "status must be one of: pending, delayed, processing, waiting, "
                                 "polling, completed, failed, timeout, cancelled"},
        {"\"limit\": 0", "limit must be a number between 1 and 100"},
        {"\"limit\": \"x\"", "limit must be a number between 1 and 100"},
        {"\"offset\": -1", "offset must be a non-negative number"},
        {"\"sortOrder\": \"up\"", "sortOrder must be one of: asc, desc"},
    };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        rig_core_call (rig, AQ_CMD_TASK_LIST, "{\"key\": \"%s\", %s}", rig->key, lists[i].fields);
        assert (s_refused (rig, AQ_BAD_REQUEST, lists[i].error));
    }
    rig_core_call (rig, AQ_CMD_TASK_GET, "{\"key\": \"%s\", \"id\": \"%s\", \"wait\": 26}",
                   rig->key, id);
    assert (s_refused (rig, AQ_BAD_REQUEST, "wait must be a number between 0 and 25"));

    //  signal: only a waiting task, with a signal the seed accepts
    static const struct {
        const char *signal, *error;
    } signals[] = {
        {"", "Request body must be a JSON object"},
        {", \"signal\": 5", "Request body must be a JSON object"},
        {", \"signal\": {\"status\": \"completed\", \"x\": 1}", "Unknown field: x"},
        {", \"signal\": {\"status\": \"done\"}", "status must be one of: completed, failed"},
    };
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++) {
        rig_core_call (rig, AQ_CMD_TASK_SIGNAL, "{\"key\": \"%s\", \"id\": \"%s\"%s}", rig->key, id,
                       signals[i].signal);
        assert (s_refused (rig, AQ_BAD_REQUEST, signals[i].error));
    }
    rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                   "{\"key\": \"%s\", \"id\": \"%s\", \"signal\": {\"status\": \"completed\"}}",
                   rig->key, id);
    assert (s_refused (rig, AQ_CONFLICT, "Task cannot be signalled in status pending"));
    rig_core_call (rig, AQ_CMD_TASK_SIGNAL,
                   "{\"key\": \"sig_00000000000000000000000000000000\", \"id\": \"%s\", "
                   "\"signal\": {\"status\": \"completed\"}}",
                   id);
    assert (s_refused (rig, AQ_UNAUTH, "Invalid or revoked API key"));

    //  auth and stats: a team key sees its team, the admin token everything
    char team[AQ_UUID_TEXT], topic[80], want[200];
    aq_uuid_format (rig->team, team);
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key) == AQ_OK);
    snprintf (want, sizeof want,
              "{\"teamId\":\"%s\",\"team\":\"acme\",\"scope\":\"full\",\"events\":\"%s\"}", team,
              bk_engine_topic (rig->engine, team, topic));
    assert (strcmp (rig->json, want) == 0);
    assert (rig_core_call (rig, AQ_CMD_STATS, "{\"key\": \"%s\"}", rig->key) == AQ_OK);
    assert (rig_core_shows (rig, "\"scope\":\"team\"") && rig_core_shows (rig, "\"pending\":3,") &&
            rig_core_shows (rig, "\"counters\":{\"created\":3}"));
    assert (!rig_core_shows (rig, "workers") && !rig_core_shows (rig, "minutes"));
    //  the console's view (GET /v1/stats) adds the workers and the last hour
    assert (rig_core_call (rig, AQ_CMD_STATS, "{\"key\": \"%s\", \"view\": \"console\"}",
                           rig->key) == AQ_OK);
    assert (rig_core_shows (rig, "\"counters\":{\"created\":3},\"workers\":0,\"minutes\":[{"));
    assert (rig_core_shows (rig, "\"created\":1,\"completed\":0,\"failed\":0}]"));
    assert (rig_core_call (rig, AQ_CMD_STATS, "{\"key\": \"%s\"}", RIG_CORE_ADMIN) == AQ_OK);
    assert (rig_core_shows (rig, "\"scope\":\"global\"") && rig_core_shows (rig, "\"pending\":4,"));
    assert (rig_core_shows (rig, "\"workers\":0,") && rig_core_shows (rig, "\"created\":4,"));
    //  its long poll: held while the changes count is the one given, answered
    //  by the next status change of the team's tasks, or at its deadline
    aq_node_t changes;
    int64_t seen, now_seen;
    assert (rig_core_call (rig, AQ_CMD_STATS, "{\"key\": \"%s\", \"view\": \"console\"}",
                           rig->key) == AQ_OK);
    assert (aq_node_get (&rig->body, "changes", &changes) &&
            aq_node_int_in (&changes, 3, INT64_MAX, &seen));
    int64_t corr = rig_core_send (rig, AQ_CMD_STATS,
                                  "{\"key\": \"%s\", \"view\": \"console\", \"wait\": 5, "
                                  "\"since\": \"%lld\"}",
                                  rig->key, (long long) seen);
    rig_core_turn (rig);
    assert (rig_core_answer (rig) < 0 && bk_handlers_next_deadline (rig->handlers) != INT64_MAX);
    char made[AQ_UUID_TEXT];
    assert (rig_core_create (rig, "{\"targetUrl\": \"http://t.test/stats\"}", made) == AQ_CREATED);
    assert (rig_core_answer (rig) == AQ_OK && rig->answer_corr == corr);
    assert (rig_core_shows (rig, "\"pending\":4,") && rig_core_shows (rig, "\"minutes\":["));
    assert (aq_node_get (&rig->body, "changes", &changes) &&
            aq_node_int_in (&changes, 0, INT64_MAX, &now_seen) && now_seen == seen + 1);
    assert (bk_handlers_next_deadline (rig->handlers) == INT64_MAX);
    corr = rig_core_send (rig, AQ_CMD_STATS,
                          "{\"key\": \"%s\", \"view\": \"console\", \"wait\": 2, "
                          "\"since\": \"%lld\"}",
                          rig->key, (long long) seen + 1);
    rig_core_turn (rig);
    assert (rig_core_answer (rig) < 0);
    rig_core_later (rig, 1999);
    assert (rig_core_answer (rig) < 0);
    rig_core_later (rig, 1);
    assert (rig_core_answer (rig) == AQ_OK && rig->answer_corr == corr);
    //  an old count, or no count, is answered at once
    assert (rig_core_call (rig, AQ_CMD_STATS,
                           "{\"key\": \"%s\", \"view\": \"console\", \"wait\": 5, "
                           "\"since\": \"%lld\"}",
                           rig->key, (long long) seen) == AQ_OK);
    assert (rig_core_call (rig, AQ_CMD_STATS,
                           "{\"key\": \"%s\", \"view\": \"console\", \"wait\": 5}",
                           rig->key) == AQ_OK);
    rig_core_call (rig, AQ_CMD_STATS, "{\"admin\": \"nope\"}");
    assert (s_refused (rig, AQ_UNAUTH, "Invalid admin token"));
}

//  Batch: all or nothing; bulk: a job the turns finish, the team's own
static void s_test_bulk (rig_core_t *rig) {
    aq_node_t value;
    static const char *const batch_of_two =
        "{\"key\": \"%s\", \"batch\": {\"tasks\": [{\"targetUrl\": \"http://t.test/b\", "
        "\"labels\": {\"batch\": \"b1\"}}, {\"targetUrl\": \"http://t.test/b\", %s}]}}";
    rig_core_call (rig, AQ_CMD_TASK_BATCH, batch_of_two, rig->key, "\"priority\": 0");
    assert (rig->status == AQ_BAD_REQUEST && //  a REPLY: the index is a field beside the error
            strcmp (rig->json, "{\"error\":\"tasks[1]: priority must be an integer between 1 and "
                               "10\",\"index\":1}") == 0);
    assert (rig_core_call (rig, AQ_CMD_TASK_BATCH, batch_of_two, rig->key,
                           "\"labels\": {\"batch\": \"b1\"}") == AQ_CREATED);
    assert (rig_core_call (rig, AQ_CMD_TASK_BULK,
                           "{\"key\": \"%s\", \"bulk\": {\"action\": \"cancel\", \"filter\": "
                           "{\"labels\": {\"batch\": \"b1\"}}}}",
                           rig->key) == AQ_ACCEPTED);
    char job[AQ_UUID_TEXT];
    aq_node_t bulk;
    assert (aq_node_get (&rig->body, "bulk", &bulk) && aq_node_get (&bulk, "id", &value) &&
            aq_node_strcpy (&value, job, sizeof job));
    assert (rig_core_shows (rig, "\"status\":\"running\",\"matched\":2"));
    rig_core_later (rig, 1);
    assert (rig_core_call (rig, AQ_CMD_BULK_GET, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           job) == AQ_OK);
    assert (rig_core_shows (rig, "\"status\":\"completed\",\"matched\":2,\"done\":2,\"failed\":0"));
    rig_core_call (rig, AQ_CMD_BULK_GET, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->other_key, job);
    assert (s_refused (rig, AQ_NOT_FOUND, "Bulk job not found"));
}

//  The team's rate limit: taken by every keyed request, at the rig's clock
static void s_test_limit (rig_core_t *rig) {
    assert (rig_core_call (rig, AQ_CMD_TEAM_LIMIT,
                           "{\"admin\": \"%s\", \"team\": \"acme\", \"rps\": 1, \"burst\": 2}",
                           RIG_CORE_ADMIN) == AQ_OK);
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key) == AQ_OK);
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key) == AQ_OK);
    rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key);
    assert (
        s_refused (rig, AQ_TOO_MANY, "Rate limit exceeded. Upgrade your plan for higher limits.") &&
        rig->retry_after == 1);
    //  another team is not held back, nor is the admin
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->other_key) == AQ_OK);
    assert (rig_core_call (rig, AQ_CMD_TEAM_LIST, "{\"admin\": \"%s\"}", RIG_CORE_ADMIN) == AQ_OK);
    rig_core_advance (rig, 1000);
    assert (rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key) == AQ_OK);
    rig_core_call (rig, AQ_CMD_AUTH, "{\"key\": \"%s\"}", rig->key);
    assert (rig->status == AQ_TOO_MANY);
}

void bk_handlers_test (bool verbose) {
    rig_core_t *rig = rig_core_new ("handlers", false);
    s_test_access (rig);
    s_test_teams (rig);
    s_test_commands (rig);
    s_test_bulk (rig);
    s_test_limit (rig);
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_handlers: ok\n");
}
