/*  admin.c - client commands about teams, API keys and vault tokens */
#include "admin.h"
#include "aq_json.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "outbox.h"
#include "tokens.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

bool bk_admin_handles (int cmd) {
    switch (cmd) {
    case AQ_CMD_TEAM_CREATE:
    case AQ_CMD_TEAM_LIST:
    case AQ_CMD_KEY_CREATE:
    case AQ_CMD_KEY_LIST:
    case AQ_CMD_KEY_REVOKE:
    case AQ_CMD_TEAM_SECRET:
    case AQ_CMD_TEAM_LIMIT:
    case AQ_CMD_TOKEN_CREATE:
    case AQ_CMD_TOKEN_LIST:
    case AQ_CMD_TOKEN_DELETE:
        return true;
    default:
        return false;
    }
}

//  A non-empty string field, or false.
static bool s_given (const bk_req_t *req, const char *key, aq_node_t *value) {
    return bk_req_get (req, key, value) && aq_node_is_str (value) && value->count > 0;
}

static void s_answer_team (bk_req_t *req, int status, const bk_team_t *team, bool with_secret) {
    bk_team_write_public (team, with_secret, bk_req_named (req, status, "team"));
    bk_req_done (req);
}

static void s_answer_key (bk_keys_t *keys, bk_req_t *req, int status, const bk_key_t *key,
                          const char *secret) {
    const bk_team_t *team = bk_keys_team (keys, key->team);
    bk_key_write_public (key, team ? team->name : NULL, secret, bk_req_named (req, status, "key"));
    bk_req_done (req);
}

static void s_team_create (bk_keys_t *keys, bk_req_t *req, int64_t now) {
    aq_node_t value;
    char name[BK_TEAM_NAME_MAX + 1];
    bk_team_t team;
    if (!s_given (req, "name", &value)) {
        bk_req_error (req, AQ_BAD_REQUEST, "name is required");
        return;
    }
    //  as before, a name over 200 bytes is answered as one taken
    int rc = aq_node_strcpy (&value, name, sizeof name)
                 ? bk_keys_team_create (keys, name, now, &team)
                 : BK_KEYS_EXISTS;
    if (rc == BK_KEYS_EXISTS)
        bk_req_error (req, AQ_CONFLICT, "Team already exists");
    else if (rc != 0)
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    else
        s_answer_team (req, AQ_CREATED, &team, false);
    sodium_memzero (team.secret, sizeof team.secret);
}

static void s_key_create (bk_keys_t *keys, bk_req_t *req, int64_t now) {
    aq_node_t value;
    char name[BK_TEAM_NAME_MAX + 1], secret[BK_KEY_TEXT];
    if (!s_given (req, "team", &value)) {
        bk_req_error (req, AQ_BAD_REQUEST, "team is required");
        return;
    }
    //  as before, a team name over 200 bytes fails as a bad scope does
    bool named = aq_node_strcpy (&value, name, sizeof name);
    int scope = BK_SCOPE_FULL; //  also when scope is not a string
    if (bk_req_get (req, "scope", &value) && aq_node_is_str (&value))
        scope = aq_node_streq (&value, "full")   ? BK_SCOPE_FULL
                : aq_node_streq (&value, "read") ? BK_SCOPE_READ
                                                 : 0;
    if (!named || !scope) {
        bk_req_error (req, AQ_BAD_REQUEST, "scope must be one of: full, read");
        return;
    }
    bk_key_t key;
    if (bk_keys_create (keys, name, scope, now, &key, secret) != 0) {
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
        return;
    }
    s_answer_key (keys, req, AQ_CREATED, &key, secret);
    sodium_memzero (secret, sizeof secret);
}

static void s_key_list (bk_keys_t *keys, bk_req_t *req) {
    aq_node_t value;
    char name[BK_TEAM_NAME_MAX + 1] = "";
    //  a team that is not a string lists every key; one too long, none
    bool filter = bk_req_get (req, "team", &value) && aq_node_is_str (&value);
    if (filter && !aq_node_strcpy (&value, name, sizeof name))
        name[0] = '\0';
    bk_keys_write_keys (keys, filter ? name : NULL, bk_req_named (req, AQ_OK, "keys"));
    bk_req_done (req);
}

static void s_key_revoke (bk_keys_t *keys, bk_req_t *req, int64_t now) {
    char id[BK_KEY_ID_HEX + 1];
    bk_key_t key;
    int rc =
        bk_req_str (req, "id", id, sizeof id) ? bk_keys_revoke (keys, id, now, &key) : BK_NOTFOUND;
    if (rc == BK_NOTFOUND)
        bk_req_error (req, AQ_NOT_FOUND, "Key not found");
    else if (rc != 0)
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    else
        s_answer_key (keys, req, AQ_OK, &key, NULL);
}

//  TEAM_LIMIT's rps and burst into team; false when they are not
//  non-negative numbers (burst may be absent: 0).
static bool s_limit (bk_req_t *req, bk_team_t *team) {
    aq_node_t value;
    double rps, burst = 0;
    if (!bk_req_get (req, "rps", &value) || !aq_node_number (&value, &rps) || !(rps >= 0) ||
        isinf (rps))
        return false;
    if (bk_req_get (req, "burst", &value) &&
        (!aq_node_number (&value, &burst) || !(burst >= 0) || isinf (burst)))
        return false;
    team->limited = true;
    team->rps = rps;
    team->burst = burst;
    return true;
}

//  TEAM_SECRET (the secret, rotated when asked) and TEAM_LIMIT.
static void s_team_change (bk_keys_t *keys, bk_req_t *req, int cmd) {
    aq_node_t value;
    char name[BK_TEAM_NAME_MAX + 1];
    bk_team_t team;
    int rc = bk_req_str (req, "team", name, sizeof name) ? bk_keys_team_find (keys, name, &team)
                                                         : BK_NOTFOUND;
    bool change = cmd == AQ_CMD_TEAM_LIMIT;
    if (rc == BK_NOTFOUND)
        bk_req_error (req, AQ_NOT_FOUND, "Team not found");
    else if (rc != 0)
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    else if (cmd == AQ_CMD_TEAM_LIMIT && !s_limit (req, &team))
        bk_req_error (req, AQ_BAD_REQUEST, "rps must be a non-negative number");
    else {
        if (cmd == AQ_CMD_TEAM_SECRET && bk_req_get (req, "rotate", &value) &&
            value.type == AQ_NODE_BOOL && value.b) {
            bk_keys_new_secret (team.secret);
            change = true;
        }
        if (change && bk_keys_team_save (keys, &team) != 0)
            bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
        else //  the secret is shown by TEAM_SECRET alone
            s_answer_team (req, AQ_OK, &team, cmd == AQ_CMD_TEAM_SECRET);
    }
    sodium_memzero (team.secret, sizeof team.secret);
}

static void s_tokens (bk_store_t *store, const aq_plugin_vault_t *vault, bk_req_t *req, int cmd,
                      int64_t now) {
    if (!vault) {
        bk_req_error (req, AQ_UNAVAILABLE, "Token vault unavailable");
        return;
    }
    bk_token_t token;
    if (cmd == AQ_CMD_TOKEN_CREATE) {
        aq_node_t body;
        const char *error;
        char errbuf[160];
        bool given = bk_req_get (req, "token", &body);
        if (bk_tokens_create (store, vault, req->team, given ? &body : NULL, now, &token, &error,
                              errbuf, sizeof errbuf) == 0) {
            bk_token_write_public (&token, bk_req_named (req, AQ_CREATED, "token"));
            bk_req_done (req);
        } else
            bk_req_error (req, error ? AQ_BAD_REQUEST : AQ_UNAVAILABLE,
                          error ? error : BK_REPLY_FAILED);
    } else if (cmd == AQ_CMD_TOKEN_LIST) {
        bk_tokens_write_list (store, req->team, bk_req_named (req, AQ_OK, "tokens"));
        bk_req_done (req);
    } else {
        char id[BK_TOKEN_ID_SIZE + 1];
        int rc = bk_req_str (req, "id", id, sizeof id)
                     ? bk_tokens_delete (store, req->team, id, &token)
                     : BK_NOTFOUND;
        if (rc == BK_NOTFOUND)
            bk_req_error (req, AQ_NOT_FOUND, "Token not found");
        else if (rc != 0)
            bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
        else {
            bk_token_write_public (&token, bk_req_named (req, AQ_OK, "token"));
            bk_req_done (req);
        }
    }
}

void bk_admin_command (bk_store_t *store, bk_keys_t *keys, const aq_plugin_vault_t *vault,
                       bk_req_t *req, int cmd, int64_t now) {
    switch (cmd) {
    case AQ_CMD_TEAM_CREATE:
        s_team_create (keys, req, now);
        break;
    case AQ_CMD_TEAM_LIST:
        bk_keys_write_teams (keys, bk_req_named (req, AQ_OK, "teams"));
        bk_req_done (req);
        break;
    case AQ_CMD_KEY_CREATE:
        s_key_create (keys, req, now);
        break;
    case AQ_CMD_KEY_LIST:
        s_key_list (keys, req);
        break;
    case AQ_CMD_KEY_REVOKE:
        s_key_revoke (keys, req, now);
        break;
    case AQ_CMD_TEAM_SECRET:
    case AQ_CMD_TEAM_LIMIT:
        s_team_change (keys, req, cmd);
        break;
    case AQ_CMD_TOKEN_CREATE:
    case AQ_CMD_TOKEN_LIST:
    case AQ_CMD_TOKEN_DELETE:
        s_tokens (store, vault, req, cmd, now);
        break;
    default:
        assert (!"bk_admin_command: not an admin or token command");
    }
}

//  --------------------------------------------------------------------------
//  Selftest: each command against a test store, its answer read back as
//  the client gets it (a DEALER behind the outbox's ROUTER).

typedef struct {
    void *ctx, *router, *dealer; //  the client's side is the dealer
    bk_outbox_t *outbox;         //  no events sockets
    bk_store_t *store;           //  a test store in a write transaction
    bk_keys_t *keys;             //  over it
    const aq_plugin_vault_t *vault;
    uint8_t team[16];    //  the caller's team for token commands
    int64_t corr;        //  the last request's
    uint8_t frame[8192]; //  the last answer
    aq_node_t reply;     //  its map
    aq_node_t body;      //  its body (nil when none)
    char error[256];     //  its error ("" when none)
} s_rig_t;

//  Sends cmd with the fields of json (a JSON object) and reads the
//  answer into rig; returns its status.
static int s_run (s_rig_t *rig, int cmd, const char *json) {
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (json, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_req_t req = {.outbox = rig->outbox,
                    .socket = rig->router,
                    .rid = (const uint8_t *) "peer",
                    .rid_size = 4,
                    .corr = ++rig->corr};
    assert (aq_msg_parse (data, size, &req.body) == 0);
    memcpy (req.team, rig->team, 16);
    assert (bk_admin_handles (cmd));
    bk_admin_command (rig->store, rig->keys, rig->vault, &req, cmd, 1705314600000);
    aq_writer_release (&w);
    assert (bk_outbox_size (rig->outbox) == 1); //  answered exactly once
    assert (bk_outbox_flush (rig->outbox, true) == 0);
    int got = zmq_recv (rig->dealer, rig->frame, sizeof rig->frame, 0);
    assert (got > AQ_PROTO_HEADER && got <= (int) sizeof rig->frame);
    assert (rig->frame[3] == AQ_CMD_REPLY);
    assert (aq_msg_parse (rig->frame + 4, (size_t) got - 4, &rig->reply) == 0);
    aq_node_t value;
    assert (aq_node_get (&rig->reply, "corr", &value) && value.i == rig->corr);
    if (!aq_node_get (&rig->reply, "body", &rig->body))
        rig->body.type = AQ_NODE_NIL;
    rig->error[0] = '\0';
    if (aq_node_get (&rig->reply, "error", &value))
        assert (aq_node_strcpy (&value, rig->error, sizeof rig->error));
    assert (aq_node_get (&rig->reply, "status", &value));
    return (int) value.i;
}

//  The answer's error when status is as expected.
static bool s_refused (s_rig_t *rig, int cmd, const char *json, int status, const char *error) {
    int got = s_run (rig, cmd, json);
    if (got == status && rig->body.type == AQ_NODE_NIL && strcmp (rig->error, error) == 0)
        return true;
    fprintf (stderr, "bk_admin: %s: %d %s\n", json, got, rig->error);
    return false;
}

//  The body's single entry, named name.
static aq_node_t s_named (s_rig_t *rig, const char *name) {
    aq_node_t value;
    assert (rig->body.type == AQ_NODE_MAP && rig->body.count == 1);
    assert (aq_node_get (&rig->body, name, &value));
    return value;
}

static bool s_str_is (const aq_node_t *map, const char *key, const char *text) {
    aq_node_t value;
    return aq_node_get (map, key, &value) && aq_node_streq (&value, text);
}

//  The body as the gateway renders it.
static bool s_json_is (s_rig_t *rig, const char *json) {
    char *text = aq_json_dumps (&rig->body);
    bool same = text && strcmp (text, json) == 0;
    if (!same)
        fprintf (stderr, "bk_admin: got %s\n     want %s\n", text, json);
    free (text);
    return same;
}

static void s_test_teams_and_keys (s_rig_t *rig) {
    //  TEAM_CREATE: the team without its secret
    assert (s_run (rig, AQ_CMD_TEAM_CREATE, "{\"name\": \"acme\"}") == AQ_CREATED);
    aq_node_t team = s_named (rig, "team"), value;
    char id[AQ_UUID_TEXT], json[512];
    assert (aq_node_get (&team, "id", &value) && aq_node_strcpy (&value, id, sizeof id));
    snprintf (
        json, sizeof json,
        "{\"team\":{\"id\":\"%s\",\"name\":\"acme\",\"createdAt\":\"2024-01-15T10:30:00.000Z\"}}",
        id);
    assert (s_json_is (rig, json));
    assert (s_refused (rig, AQ_CMD_TEAM_CREATE, "{\"name\": \"acme\"}", AQ_CONFLICT,
                       "Team already exists"));
    assert (s_refused (rig, AQ_CMD_TEAM_CREATE, "{}", AQ_BAD_REQUEST, "name is required"));
    assert (s_refused (rig, AQ_CMD_TEAM_CREATE, "{\"name\": \"\"}", AQ_BAD_REQUEST,
                       "name is required"));
    assert (
        s_refused (rig, AQ_CMD_TEAM_CREATE, "{\"name\": 5}", AQ_BAD_REQUEST, "name is required"));
    char long_name[300];
    snprintf (long_name, sizeof long_name, "{\"name\": \"%0201d\"}", 0);
    assert (s_refused (rig, AQ_CMD_TEAM_CREATE, long_name, AQ_CONFLICT, "Team already exists"));

    //  KEY_CREATE: the key with its secret, once; a new team made on the way
    assert (s_run (rig, AQ_CMD_KEY_CREATE, "{\"team\": \"acme\"}") == AQ_CREATED);
    aq_node_t key = s_named (rig, "key");
    char full[BK_KEY_TEXT], key_id[BK_KEY_ID_HEX + 1];
    assert (key.count == 7 && s_str_is (&key, "team", "acme") && s_str_is (&key, "teamId", id));
    assert (s_str_is (&key, "scope", "full") && !aq_node_get (&key, "hash", &value));
    assert (s_str_is (&key, "createdAt", "2024-01-15T10:30:00.000Z"));
    assert (aq_node_get (&key, "revoked", &value) && value.type == AQ_NODE_BOOL && !value.b);
    assert (aq_node_get (&key, "secret", &value) && aq_node_strcpy (&value, full, sizeof full));
    assert (aq_node_get (&key, "id", &value) && aq_node_strcpy (&value, key_id, sizeof key_id));
    uint8_t raw[16];
    bool read_only = true;
    assert (bk_keys_check (rig->keys, full, raw, &read_only) == 0 && !read_only);
    assert (s_run (rig, AQ_CMD_KEY_CREATE, "{\"team\": \"globex\", \"scope\": \"read\"}") ==
            AQ_CREATED);
    key = s_named (rig, "key");
    assert (s_str_is (&key, "scope", "read") && s_str_is (&key, "team", "globex"));
    assert (s_run (rig, AQ_CMD_KEY_CREATE, "{\"team\": \"acme\", \"scope\": 5}") == AQ_CREATED);
    key = s_named (rig, "key");
    assert (s_str_is (&key, "scope", "full"));
    assert (s_refused (rig, AQ_CMD_KEY_CREATE, "{\"team\": \"acme\", \"scope\": \"admin\"}",
                       AQ_BAD_REQUEST, "scope must be one of: full, read"));
    assert (s_refused (rig, AQ_CMD_KEY_CREATE, "{\"scope\": \"read\"}", AQ_BAD_REQUEST,
                       "team is required"));
    snprintf (long_name, sizeof long_name, "{\"team\": \"%0201d\"}", 0);
    assert (s_refused (rig, AQ_CMD_KEY_CREATE, long_name, AQ_BAD_REQUEST,
                       "scope must be one of: full, read"));

    //  TEAM_LIST and KEY_LIST: public shapes, no secrets, no hashes
    assert (s_run (rig, AQ_CMD_TEAM_LIST, "{}") == AQ_OK);
    aq_node_t list = s_named (rig, "teams"), item;
    assert (list.type == AQ_NODE_ARRAY && list.count == 2);
    aq_iter_t it;
    aq_node_iter (&list, &it);
    assert (aq_iter_next (&it, NULL, &item) && s_str_is (&item, "name", "acme"));
    assert (item.count == 3 && !aq_node_get (&item, "signingSecret", &value));
    assert (s_run (rig, AQ_CMD_KEY_LIST, "{\"team\": \"acme\"}") == AQ_OK);
    list = s_named (rig, "keys");
    assert (list.type == AQ_NODE_ARRAY && list.count == 2);
    aq_node_iter (&list, &it);
    while (aq_iter_next (&it, NULL, &item)) {
        assert (item.count == 6 && s_str_is (&item, "team", "acme"));
        assert (!aq_node_get (&item, "secret", &value) && !aq_node_get (&item, "hash", &value));
    }
    assert (s_run (rig, AQ_CMD_KEY_LIST, "{}") == AQ_OK && s_named (rig, "keys").count == 3);
    assert (s_run (rig, AQ_CMD_KEY_LIST, "{\"team\": 5}") == AQ_OK &&
            s_named (rig, "keys").count == 3);
    assert (s_run (rig, AQ_CMD_KEY_LIST, "{\"team\": \"nope\"}") == AQ_OK &&
            s_named (rig, "keys").count == 0);
    assert (s_run (rig, AQ_CMD_KEY_LIST, "{\"team\": \"\"}") == AQ_OK &&
            s_named (rig, "keys").count == 0);

    //  KEY_REVOKE: revoked at once, with the time
    char request[128];
    snprintf (request, sizeof request, "{\"id\": \"%s\"}", key_id);
    assert (s_run (rig, AQ_CMD_KEY_REVOKE, request) == AQ_OK);
    key = s_named (rig, "key");
    assert (key.count == 7 && s_str_is (&key, "id", key_id) && s_str_is (&key, "team", "acme"));
    assert (aq_node_get (&key, "revoked", &value) && value.b);
    assert (s_str_is (&key, "revokedAt", "2024-01-15T10:30:00.000Z"));
    assert (!aq_node_get (&key, "secret", &value));
    assert (bk_keys_check (rig->keys, full, raw, &read_only) == -1);
    sodium_memzero (full, sizeof full);
    assert (s_refused (rig, AQ_CMD_KEY_REVOKE, "{\"id\": \"0000000000000000\"}", AQ_NOT_FOUND,
                       "Key not found"));
    assert (s_refused (rig, AQ_CMD_KEY_REVOKE, "{}", AQ_NOT_FOUND, "Key not found"));

    //  TEAM_SECRET: shown, rotated on request; TEAM_LIMIT: never shows it
    assert (s_run (rig, AQ_CMD_TEAM_SECRET, "{\"team\": \"acme\"}") == AQ_OK);
    team = s_named (rig, "team");
    char secret[BK_SECRET_TEXT];
    assert (aq_node_get (&team, "signingSecret", &value) &&
            aq_node_strcpy (&value, secret, sizeof secret));
    assert (strncmp (secret, "whsec_", 6) == 0);
    assert (strcmp (bk_keys_signing_secret (rig->keys, raw), secret) == 0);
    assert (s_run (rig, AQ_CMD_TEAM_SECRET, "{\"team\": \"acme\", \"rotate\": false}") == AQ_OK);
    team = s_named (rig, "team");
    assert (s_str_is (&team, "signingSecret", secret));
    assert (s_run (rig, AQ_CMD_TEAM_SECRET, "{\"team\": \"acme\", \"rotate\": true}") == AQ_OK);
    team = s_named (rig, "team");
    assert (!s_str_is (&team, "signingSecret", secret));
    assert (aq_node_get (&team, "signingSecret", &value) &&
            aq_node_streq (&value, bk_keys_signing_secret (rig->keys, raw)));
    assert (s_refused (rig, AQ_CMD_TEAM_SECRET, "{\"team\": \"nope\"}", AQ_NOT_FOUND,
                       "Team not found"));
    assert (s_refused (rig, AQ_CMD_TEAM_SECRET, "{}", AQ_NOT_FOUND, "Team not found"));

    assert (s_run (rig, AQ_CMD_TEAM_LIMIT, "{\"team\": \"acme\", \"rps\": 5.0}") == AQ_OK);
    snprintf (
        json, sizeof json,
        "{\"team\":{\"id\":\"%s\",\"name\":\"acme\",\"createdAt\":\"2024-01-15T10:30:00.000Z\","
        "\"rateLimit\":{\"rps\":5.0,\"burst\":0.0}}}",
        id);
    assert (s_json_is (rig, json));
    double rps = 0, burst = -1;
    assert (bk_keys_rate_limit (rig->keys, raw, &rps, &burst) && rps == 5 && burst == 0);
    assert (s_run (rig, AQ_CMD_TEAM_LIMIT, "{\"team\": \"acme\", \"rps\": 2, \"burst\": 4}") ==
            AQ_OK);
    assert (bk_keys_rate_limit (rig->keys, raw, &rps, &burst) && rps == 2 && burst == 4);
    static const char *const bad[] = {
        "{\"team\": \"acme\"}",
        "{\"team\": \"acme\", \"rps\": -1}",
        "{\"team\": \"acme\", \"rps\": \"5\"}",
        "{\"team\": \"acme\", \"rps\": true}",
        "{\"team\": \"acme\", \"rps\": 1, \"burst\": \"x\"}",
        "{\"team\": \"acme\", \"rps\": 1, \"burst\": null}",
        "{\"team\": \"acme\", \"rps\": 1, \"burst\": -2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert (s_refused (rig, AQ_CMD_TEAM_LIMIT, bad[i], AQ_BAD_REQUEST,
                           "rps must be a non-negative number"));
    assert (bk_keys_rate_limit (rig->keys, raw, &rps, &burst) && rps == 2 && burst == 4);
    assert (s_refused (rig, AQ_CMD_TEAM_LIMIT, "{\"team\": \"nope\", \"rps\": 1}", AQ_NOT_FOUND,
                       "Team not found"));
    //  the list shows the limit, still not the secret
    assert (s_run (rig, AQ_CMD_TEAM_LIST, "{}") == AQ_OK);
    list = s_named (rig, "teams");
    aq_node_iter (&list, &it);
    assert (aq_iter_next (&it, NULL, &item) && aq_node_get (&item, "rateLimit", &value));
    assert (!aq_node_get (&item, "signingSecret", &value));
}

static void s_test_tokens (s_rig_t *rig) {
    const aq_plugin_vault_t *vault = rig->vault;
    rig->vault = NULL;
    assert (s_refused (rig, AQ_CMD_TOKEN_CREATE, "{\"token\": {\"name\": \"x\", \"value\": \"v\"}}",
                       AQ_UNAVAILABLE, "Token vault unavailable"));
    assert (s_refused (rig, AQ_CMD_TOKEN_LIST, "{}", AQ_UNAVAILABLE, "Token vault unavailable"));
    assert (s_refused (rig, AQ_CMD_TOKEN_DELETE, "{\"id\": \"x\"}", AQ_UNAVAILABLE,
                       "Token vault unavailable"));
    rig->vault = vault;
    if (!vault)
        return;
    assert (s_refused (rig, AQ_CMD_TOKEN_CREATE, "{}", AQ_BAD_REQUEST,
                       "Request body must be a JSON object"));
    assert (s_refused (rig, AQ_CMD_TOKEN_CREATE, "{\"token\": {\"name\": \"x\"}}", AQ_BAD_REQUEST,
                       "value is required"));
    assert (s_refused (rig, AQ_CMD_TOKEN_CREATE, "{\"token\": {\"name\": \"x\", \"v\": 1}}",
                       AQ_BAD_REQUEST, "Unknown field: v"));
    assert (s_run (rig, AQ_CMD_TOKEN_CREATE,
                   "{\"token\": {\"name\": \"fal key\", \"value\": \"Key s3cret\"}}") ==
            AQ_CREATED);
    aq_node_t token = s_named (rig, "token"), value;
    char id[BK_TOKEN_ID_SIZE + 1], json[256];
    assert (aq_node_get (&token, "id", &value) && aq_node_strcpy (&value, id, sizeof id));
    snprintf (json, sizeof json,
              "{\"token\":{\"id\":\"%s\",\"name\":\"fal "
              "key\",\"createdAt\":\"2024-01-15T10:30:00.000Z\"}}",
              id);
    assert (s_json_is (rig, json));
    assert (bk_tokens_exists (rig->store, rig->team, id));

    assert (s_run (rig, AQ_CMD_TOKEN_LIST, "{}") == AQ_OK);
    snprintf (json, sizeof json,
              "{\"tokens\":[{\"id\":\"%s\",\"name\":\"fal "
              "key\",\"createdAt\":\"2024-01-15T10:30:00.000Z\"}]}",
              id);
    assert (s_json_is (rig, json));
    uint8_t team[16];
    memcpy (team, rig->team, 16);
    aq_uuid_new (rig->team); //  another team sees none of them
    assert (s_run (rig, AQ_CMD_TOKEN_LIST, "{}") == AQ_OK && s_named (rig, "tokens").count == 0);
    char request[128];
    snprintf (request, sizeof request, "{\"id\": \"%s\"}", id);
    assert (s_refused (rig, AQ_CMD_TOKEN_DELETE, request, AQ_NOT_FOUND, "Token not found"));
    memcpy (rig->team, team, 16);
    assert (s_run (rig, AQ_CMD_TOKEN_DELETE, request) == AQ_OK);
    token = s_named (rig, "token");
    assert (s_str_is (&token, "id", id) && s_str_is (&token, "name", "fal key"));
    assert (!bk_tokens_exists (rig->store, rig->team, id));
    assert (s_refused (rig, AQ_CMD_TOKEN_DELETE, request, AQ_NOT_FOUND, "Token not found"));
    assert (s_refused (rig, AQ_CMD_TOKEN_DELETE, "{}", AQ_NOT_FOUND, "Token not found"));
}

void bk_admin_test (bool verbose) {
    assert (bk_admin_handles (AQ_CMD_TEAM_LIMIT) && bk_admin_handles (AQ_CMD_TOKEN_DELETE));
    assert (!bk_admin_handles (AQ_CMD_TASK_CREATE) && !bk_admin_handles (AQ_CMD_AUTH));
    s_rig_t *rig = calloc (1, sizeof *rig);
    assert (rig);
    rig->ctx = zmq_ctx_new ();
    rig->router = zmq_socket (rig->ctx, ZMQ_ROUTER);
    rig->dealer = zmq_socket (rig->ctx, ZMQ_DEALER);
    assert (zmq_setsockopt (rig->dealer, ZMQ_ROUTING_ID, "peer", 4) == 0);
    assert (zmq_bind (rig->router, "inproc://admin-test") == 0);
    assert (zmq_connect (rig->dealer, "inproc://admin-test") == 0);
    assert (zmq_send (rig->dealer, "x", 1, 0) == 1); //  the router learns the dealer's id
    char buf[8];
    assert (zmq_recv (rig->router, buf, sizeof buf, 0) == 4 &&
            zmq_recv (rig->router, buf, sizeof buf, 0) == 1);
    rig->outbox = bk_outbox_new (NULL, 0);

    char dir[BK_STORE_TEST_DIR];
    rig->store = bk_store_test_new (dir);
    rig->keys = bk_keys_new (rig->store);
    aq_uuid_new (rig->team);
    char *plugins = aq_plugin_loader_default_dir ();
    aq_plugin_loader_t *loader = NULL;
    if (plugins) {
        loader = aq_plugin_loader_new (dir);
        aq_plugin_loader_load_dir (loader, plugins);
        rig->vault = aq_plugin_loader_vault (loader, NULL);
    }
    free (plugins);
    if (!rig->vault && verbose)
        printf ("bk_admin: no vault plugin found, token commands not tested\n");

    s_test_teams_and_keys (rig);
    s_test_tokens (rig);

    aq_plugin_loader_destroy (&loader);
    bk_keys_destroy (&rig->keys);
    bk_store_test_destroy (&rig->store, dir);
    bk_outbox_destroy (&rig->outbox);
    zmq_close (rig->router), zmq_close (rig->dealer);
    zmq_ctx_term (rig->ctx);
    free (rig);
    if (verbose)
        printf ("bk_admin: ok\n");
}
