/*  upgrade_v1.c - layout-1 records to layout-2 records, one converter per table

    Where each layout-1 field goes. Layout 1 is what broker/old/ wrote
    (public fields, bookkeeping with a leading underscore, times as integer
    ms); layout 2 is the typed struct, stored by its own encoder. A field
    not listed here makes its record unreadable: the upgrade stops and says
    so rather than drop what it does not know. "-" marks a field with no
    home in layout 2, and why. Tasks and attempts are converted in
    upgrade_task.c, the rest here.

    tasks: BK_DB_TASKS id(16) -> bk_task_t (task.h), bk_task_encode
      id                    id (UUID text -> 16 bytes; must be the record's key)
      teamId                team
      status                status (its name -> bk_status_t)
      targetUrl             target_url
      method                method (its name -> bk_method_t)
      headers               headers (the map's msgpack bytes, as they are)
      body                  body, body_size
      maxWaitTime           max_wait_s
      timeout               timeout_s
      delayUntil            delay_until
      maxRetries            max_retries
      retryCount            retry_count
      retryBackoff          backoff (its name -> bk_backoff_t)
      priority              priority
      onCompleteUrl         on_complete_url
      provider              provider
      pollConfig            poll_config (msgpack bytes, as they are)
      scheduleId runId step in_run, schedule_id, run_id, step (all three or none)
      result                result (any JSON value: its msgpack bytes, as they are)
      error                 error
      onComplete            on_complete: status (its name -> bk_outcome_status_t),
                            attempts, statusCode -> status_code, error, deliveredAt
                            (ISO 8601 text in layout 1) -> delivered_at (ms)
      nextAttemptAt         next_attempt_at
      createdAt             created_at
      startedAt             started_at
      completedAt           completed_at
      _seq                  seq
      _attempts             attempts
      _attemptAt            attempt_at
      _due                  due
      _deadline             deadline
      _lease                lease: kept, so a worker that outlived the broker's
                            stop can still settle its call (bk_dispatch_recover
                            gives each processing task an orphan lease at start)
      _signal               signal (the hash of the one-time signal token)
      _poll                 poll, active:
        stage seq inflight  stage, seq, inflight
        due interval        due, interval_ms
        statusUrl resultUrl cancelUrl cancelMethod
                            status_url, result_url, cancel_url, cancel_method
        fetchState fetchError  fetch_state, fetch_error
        lease               lease
        ops                 op_n (the last provider op's number)
        op {n stage answer} op_pending, op_n, op_stage, op (the answer's msgpack bytes)
      _notify               notify, active: attempt, inflight, due, lease
      -                     poll.cancel_owed is new in layout 2 (layout 1 sent a
                            provider's cancel at once or not at all): false
    attempts: BK_DB_ATTEMPTS id(16) attempt(2) -> bk_attempt_t (tasks.h),
              bk_tasks_add_attempt
      attempt               attempt (must be the key's number)
      startedAt duration    started_at, duration
      statusCode error      status_code, error
    teams: BK_DB_TEAMS team(16) -> bk_team_t (keys.h), bk_team_encode
      id                    id (must be the key)
      name createdAt        name, created_at
      signingSecret         secret
      rateLimit {rps burst} limited, rps, burst
    keys: BK_DB_KEYS key id -> bk_key_t (keys.h), bk_key_encode
      id                    id (must be the key)
      teamId                team
      team                  - the team's name, copied at creation: layout 2 shows
                            the team record's (a team is never renamed)
      scope                 scope
      hash                  hash (64 hex digits -> 32 bytes)
      createdAt             created_at
      revoked               - said by revoked_at >= 0 (revoked and revokedAt must agree)
      revokedAt             revoked_at
    tokens: BK_DB_TOKENS team(16) token id -> bk_token_t (tokens.h), bk_token_encode
      id                    id (must be the key's)
      name createdAt        name, created_at
      sealed                sealed (base64 text -> the bytes)
    schedules, runs, run keys (BK_DB_RUN_KEYS 'c' concurrency records, 'd'
    dedupe times): converted by the scheduler module,
    bk_sched_upgrade_record (sched/upgrade_sched.c lists their fields).
*/
#include "upgrade_v1.h"
#include "aq_uuid.h"
#include "keys.h"
#include "sched/upgrade_sched.h"
#include "tokens.h"

#include <assert.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DONE  BK_UPGRADE_V1_DONE
#define S_LEFT  BK_UPGRADE_V1_LEFT
#define S_BAD   BK_UPGRADE_V1_BAD
#define S_STORE BK_UPGRADE_V1_STORE

//  --------------------------------------------------------------------------
//  For the converters

int bk_upgrade_v1_bad (bk_upgrade_v1_t *self, const char *fmt, ...) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->why, sizeof self->why, fmt, ap);
    va_end (ap);
    return S_BAD;
}

int bk_upgrade_v1_bad_field (bk_upgrade_v1_t *self, const char *prefix, const aq_node_t *name) {
    return bk_upgrade_v1_bad (self, "field '%s%.*s' is malformed", prefix,
                              (int) (name->count < 64 ? name->count : 64),
                              (const char *) name->data);
}

int bk_upgrade_v1_unknown (bk_upgrade_v1_t *self, const char *prefix, const aq_node_t *name) {
    return bk_upgrade_v1_bad (self, "unknown field '%s%.*s'", prefix,
                              (int) (name->count < 64 ? name->count : 64),
                              (const char *) name->data);
}

int bk_upgrade_v1_put (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size) {
    size_t size;
    const uint8_t *data = aq_writer_data (&self->w, &size);
    int rc = data ? bk_store_put (self->store, db, key, key_size, data, size) : BK_ESTORE;
    if (rc != 0) {
        self->store_rc = rc;
        return S_STORE;
    }
    self->written += size;
    return S_DONE;
}

bool bk_upgrade_v1_int (const aq_node_t *value, int64_t *out) {
    if (value->type != AQ_NODE_INT)
        return false;
    *out = value->i;
    return true;
}

bool bk_upgrade_v1_count (const aq_node_t *value, int *out) {
    if (value->type != AQ_NODE_INT || value->i < 0 || value->i > INT_MAX)
        return false;
    *out = (int) value->i;
    return true;
}

bool bk_upgrade_v1_bool (const aq_node_t *value, bool *out) {
    if (value->type != AQ_NODE_BOOL)
        return false;
    *out = value->b;
    return true;
}

bool bk_upgrade_v1_uuid (const aq_node_t *value, uint8_t out[16]) {
    char text[AQ_UUID_TEXT];
    return aq_node_strcpy (value, text, sizeof text) && aq_uuid_parse (text, out) == 0;
}

#define FIELD(text) aq_node_streq (&name, text)

//  --------------------------------------------------------------------------
//  Teams, keys, tokens

static int s_team (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                   const aq_node_t *v1) {
    bk_team_t team = {.created_at = -1};
    bool id = false;
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok;
        if (FIELD ("id"))
            ok = id = bk_upgrade_v1_uuid (&value, team.id);
        else if (FIELD ("name"))
            ok = aq_node_strcpy (&value, team.name, sizeof team.name) && *team.name;
        else if (FIELD ("createdAt"))
            ok = bk_upgrade_v1_int (&value, &team.created_at);
        else if (FIELD ("signingSecret"))
            ok = aq_node_strcpy (&value, team.secret, sizeof team.secret);
        else if (FIELD ("rateLimit")) {
            aq_node_t rps, burst;
            ok = value.type == AQ_NODE_MAP && value.count == 2 &&
                 aq_node_get (&value, "rps", &rps) && aq_node_number (&rps, &team.rps) &&
                 aq_node_get (&value, "burst", &burst) && aq_node_number (&burst, &team.burst);
            team.limited = true;
        } else
            return bk_upgrade_v1_unknown (self, "", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "", &name);
    }
    if (!id || key_size != 16 || memcmp (team.id, key, 16) != 0)
        return bk_upgrade_v1_bad (self, "field 'id' is not the record's key");
    if (!*team.name || team.created_at < 0)
        return bk_upgrade_v1_bad (self, "field '%s' is missing", *team.name ? "createdAt" : "name");
    bk_team_encode (&team, &self->w);
    sodium_memzero (team.secret, sizeof team.secret);
    return bk_upgrade_v1_put (self, db, key, key_size);
}

static int s_key (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                  const aq_node_t *v1) {
    bk_key_t record = {.created_at = -1, .revoked_at = -1};
    bool team = false, hash = false, revoked = false;
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok = false;
        if (FIELD ("id"))
            ok = aq_node_strcpy (&value, record.id, sizeof record.id);
        else if (FIELD ("teamId"))
            ok = team = bk_upgrade_v1_uuid (&value, record.team);
        else if (FIELD ("team"))
            ok = aq_node_is_str (&value); //  the team's name: the team record has it
        else if (FIELD ("scope")) {
            record.scope = aq_node_streq (&value, "full")   ? BK_SCOPE_FULL
                           : aq_node_streq (&value, "read") ? BK_SCOPE_READ
                                                            : 0;
            ok = record.scope != 0;
        } else if (FIELD ("hash"))
            ok = hash = aq_node_is_str (&value) && value.count == 64 &&
                        sodium_hex2bin (record.hash, sizeof record.hash, (const char *) value.data,
                                        value.count, NULL, NULL, NULL) == 0;
        else if (FIELD ("createdAt"))
            ok = bk_upgrade_v1_int (&value, &record.created_at);
        else if (FIELD ("revoked"))
            ok = bk_upgrade_v1_bool (&value, &revoked);
        else if (FIELD ("revokedAt"))
            ok = bk_upgrade_v1_int (&value, &record.revoked_at) && record.revoked_at >= 0;
        else
            return bk_upgrade_v1_unknown (self, "", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "", &name);
    }
    if (strlen (record.id) != BK_KEY_ID_HEX || key_size != BK_KEY_ID_HEX ||
        memcmp (record.id, key, key_size) != 0)
        return bk_upgrade_v1_bad (self, "field 'id' is not the record's key");
    if (!team || !hash || !record.scope || record.created_at < 0)
        return bk_upgrade_v1_bad (self, "field '%s' is missing",
                                  !team           ? "teamId"
                                  : !hash         ? "hash"
                                  : !record.scope ? "scope"
                                                  : "createdAt");
    if (revoked != (record.revoked_at >= 0))
        return bk_upgrade_v1_bad (self, "fields 'revoked' and 'revokedAt' disagree");
    bk_key_encode (&record, &self->w);
    return bk_upgrade_v1_put (self, db, key, key_size);
}

static int s_token (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                    const aq_node_t *v1) {
    bk_token_t token = {.created_at = -1};
    aq_node_t sealed = {.type = AQ_NODE_NIL};
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok;
        if (FIELD ("id"))
            ok = aq_node_strcpy (&value, token.id, sizeof token.id) && bk_tokens_is_id (token.id);
        else if (FIELD ("name"))
            ok = aq_node_strcpy (&value, token.name, sizeof token.name) && *token.name;
        else if (FIELD ("createdAt"))
            ok = bk_upgrade_v1_int (&value, &token.created_at);
        else if (FIELD ("sealed"))
            ok = aq_node_is_str (&value), sealed = value;
        else
            return bk_upgrade_v1_unknown (self, "", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "", &name);
    }
    if (!*token.id || key_size != 16 + BK_TOKEN_ID_SIZE ||
        memcmp (token.id, key + 16, BK_TOKEN_ID_SIZE) != 0)
        return bk_upgrade_v1_bad (self, "field 'id' is not the record's key");
    if (!*token.name || token.created_at < 0 || sealed.type != AQ_NODE_STR)
        return bk_upgrade_v1_bad (self, "field '%s' is missing",
                                  !*token.name           ? "name"
                                  : token.created_at < 0 ? "createdAt"
                                                         : "sealed");
    uint8_t *bytes = malloc (sealed.count + 1);
    assert (bytes);
    size_t size = 0;
    int rc = S_DONE;
    if (sodium_base642bin (bytes, sealed.count + 1, (const char *) sealed.data, sealed.count, NULL,
                           &size, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        size == 0)
        rc = bk_upgrade_v1_bad (self, "field 'sealed' is malformed");
    if (rc == S_DONE) {
        token.sealed = bytes, token.sealed_size = size;
        bk_token_encode (&token, &self->w);
        rc = bk_upgrade_v1_put (self, db, key, key_size);
    }
    free (bytes);
    return rc;
}

#undef FIELD

//  --------------------------------------------------------------------------
//  Scheduled tasks, runs, concurrency records: the scheduler's

static int s_sched (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                    const aq_node_t *v1) {
    int rc = bk_sched_upgrade_record (self->store, db, key, key_size, v1, &self->w, self->why,
                                      sizeof self->why);
    if (rc == BK_SCHED_UPGRADE_LEFT)
        return S_LEFT;
    if (rc != 0)
        return *self->why ? S_BAD : bk_upgrade_v1_bad (self, "the scheduler cannot read it");
    return bk_upgrade_v1_put (self, db, key, key_size);
}

int bk_upgrade_v1_convert (bk_upgrade_v1_t *self, bk_db_t db, const uint8_t *key, size_t key_size,
                           const aq_node_t *v1) {
    assert (v1->type == AQ_NODE_MAP || (db == BK_DB_RUN_KEYS && v1->type == AQ_NODE_BIN));
    self->why[0] = '\0';
    aq_writer_reset (&self->w);
    switch (db) {
    case BK_DB_TASKS:
        return bk_upgrade_task_convert (self, key, key_size, v1);
    case BK_DB_ATTEMPTS:
        return bk_upgrade_task_attempt (self, key, key_size, v1);
    case BK_DB_TEAMS:
        return s_team (self, db, key, key_size, v1);
    case BK_DB_KEYS:
        return s_key (self, db, key, key_size, v1);
    case BK_DB_TOKENS:
        return s_token (self, db, key, key_size, v1);
    case BK_DB_SCHEDULES:
    case BK_DB_RUNS:
    case BK_DB_RUN_KEYS:
        return s_sched (self, db, key, key_size, v1);
    default:
        return bk_upgrade_v1_bad (self, "the table holds no records of layout 1");
    }
}
//  --------------------------------------------------------------------------
//  Selftest: one layout-1 record per interesting state, written with the
//  old code's json_pack shapes (broker/old/), converted, then read with
//  the layout-2 decoders and compared field by field.

#include "../tests/rig_v1.h"
#include "aq_json.h"

#define S_T0 1765000000000LL //  2025-12-06T05:46:40.000Z

static void s_test_uuid (int n, uint8_t id[16], char text[AQ_UUID_TEXT]) {
    static const uint8_t base[16] = {0x01, 0x9a, 0xf1, 0x2c, 0x3b, 0x00, 0x70, 0x00,
                                     0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy (id, base, 16);
    id[14] = (uint8_t) (n >> 8), id[15] = (uint8_t) n;
    aq_uuid_format (id, text);
}

//  Converts the record under key; returns what the converter said, its
//  reason in why (when not NULL).
static int s_test_convert (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                           char *why) {
    bk_val_t val;
    aq_node_t v1;
    assert (bk_store_get (store, db, key, key_size, &val) == 0);
    assert (aq_msg_parse (val.data, val.size, &v1) == 0);
    bk_upgrade_v1_t self = {.store = store};
    aq_writer_init (&self.w);
    int rc = bk_upgrade_v1_convert (&self, db, key, key_size, &v1);
    if (why)
        snprintf (why, 256, "%s", self.why);
    aq_writer_release (&self.w);
    return rc;
}
//  A key's text as bk_keys_create made it, and its hash in hex.
static void s_test_key_text (const char *id, const char *secret, char key[BK_KEY_TEXT],
                             char hash[65]) {
    uint8_t raw[32];
    snprintf (key, BK_KEY_TEXT, "aq_%s_%s", id, secret);
    crypto_generichash (raw, sizeof raw, (const uint8_t *) key, strlen (key), NULL, 0);
    sodium_bin2hex (hash, 65, raw, sizeof raw);
}

static void s_test_accounts (bk_store_t *store, const uint8_t alpha[16], const char *alpha_text,
                             const uint8_t beta[16], const char *beta_text) {
    const char *whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    //  teams: created, then a rate limit set ({rps as given, burst real})
    rig_v1_put (store, BK_DB_TEAMS, alpha, 16, "{s:s, s:s, s:I, s:s, s:{s:i, s:f}}", "id",
                alpha_text, "name", "alpha", "createdAt", S_T0, "signingSecret", whsec, "rateLimit",
                "rps", 1000, "burst", 2000.0);
    rig_v1_put (store, BK_DB_TEAMS, beta, 16, "{s:s, s:s, s:I, s:s}", "id", beta_text, "name",
                "beta", "createdAt", S_T0 + 1, "signingSecret", whsec);
    uint8_t gamma[16];
    char gamma_text[AQ_UUID_TEXT];
    s_test_uuid (3, gamma, gamma_text);
    rig_v1_put (store, BK_DB_TEAMS, gamma, 16, "{s:s, s:s, s:I, s:s, s:{s:f, s:f}}", "id",
                gamma_text, "name", "gamma", "createdAt", S_T0 + 2, "signingSecret", whsec,
                "rateLimit", "rps", 2.5, "burst", 0.0);
    bk_team_t team;
    bk_val_t val;
    assert (s_test_convert (store, BK_DB_TEAMS, alpha, 16, NULL) == S_DONE);
    assert (bk_store_get (store, BK_DB_TEAMS, alpha, 16, &val) == 0);
    assert (bk_team_decode (val.data, val.size, &team) == 0);
    assert (memcmp (team.id, alpha, 16) == 0 && strcmp (team.name, "alpha") == 0);
    assert (team.created_at == S_T0 && strcmp (team.secret, whsec) == 0);
    assert (team.limited && team.rps == 1000 && team.burst == 2000);
    assert (s_test_convert (store, BK_DB_TEAMS, beta, 16, NULL) == S_DONE);
    assert (bk_store_get (store, BK_DB_TEAMS, beta, 16, &val) == 0);
    assert (bk_team_decode (val.data, val.size, &team) == 0);
    assert (strcmp (team.name, "beta") == 0 && team.created_at == S_T0 + 1 && !team.limited);
    assert (s_test_convert (store, BK_DB_TEAMS, gamma, 16, NULL) == S_DONE);
    assert (bk_store_get (store, BK_DB_TEAMS, gamma, 16, &val) == 0);
    assert (bk_team_decode (val.data, val.size, &team) == 0);
    assert (team.limited && team.rps == 2.5 && team.burst == 0);
    rig_v1_put (store, BK_DB_TEAMS, gamma, 16, "{s:s, s:s, s:I, s:{s:i}}", "id", gamma_text, "name",
                "gamma", "createdAt", S_T0, "rateLimit", "rps", 5);
    char why[256];
    assert (s_test_convert (store, BK_DB_TEAMS, gamma, 16, why) == S_BAD);
    assert (strcmp (why, "field 'rateLimit' is malformed") == 0);

    //  keys: full, read, and a revoked one (revoked, revokedAt); they
    //  still check after the upgrade (the hash is the same)
    struct {
        const char *id, *secret, *scope;
        const uint8_t *team;
        const char *team_text, *name;
        bool revoked;
    } keys[] = {
        {"c16c477fe45d7611", "XuBUASsyJV33y0UosF2_MXPDnwelVYaMxbpQIyDCPyU", "full", alpha,
         alpha_text, "alpha", false},
        {"ecc0227564ddc09b", "NVarLkneaanHgIo0fG7_7Av_pHn-BNfDkCbO64TH8IA", "read", alpha,
         alpha_text, "alpha", false},
        {"dcc2112cf737a8ad", "Av7rJqNJn-UM8zaIyONswjMdFsvAuQ2oe7tVO2aSJ-g", "full", beta, beta_text,
         "beta", true},
    };
    bk_keys_t *cache = bk_keys_new (store);
    for (int i = 0; i < 3; i++) {
        char text[BK_KEY_TEXT], hash[65];
        s_test_key_text (keys[i].id, keys[i].secret, text, hash);
        if (keys[i].revoked)
            rig_v1_put (store, BK_DB_KEYS, keys[i].id, 16,
                        "{s:s, s:s, s:s, s:s, s:I, s:b, s:s, s:I}", "id", keys[i].id, "teamId",
                        keys[i].team_text, "team", keys[i].name, "scope", keys[i].scope,
                        "createdAt", S_T0 + i, "revoked", 1, "hash", hash, "revokedAt", S_T0 + 100);
        else
            rig_v1_put (store, BK_DB_KEYS, keys[i].id, 16, "{s:s, s:s, s:s, s:s, s:I, s:b, s:s}",
                        "id", keys[i].id, "teamId", keys[i].team_text, "team", keys[i].name,
                        "scope", keys[i].scope, "createdAt", S_T0 + i, "revoked", 0, "hash", hash);
        assert (s_test_convert (store, BK_DB_KEYS, keys[i].id, 16, NULL) == S_DONE);
        bk_key_t key;
        assert (bk_store_get (store, BK_DB_KEYS, keys[i].id, 16, &val) == 0);
        assert (bk_key_decode (val.data, val.size, &key) == 0);
        assert (strcmp (key.id, keys[i].id) == 0 && memcmp (key.team, keys[i].team, 16) == 0);
        assert (key.scope == (strcmp (keys[i].scope, "read") == 0 ? BK_SCOPE_READ : BK_SCOPE_FULL));
        assert (key.created_at == S_T0 + i);
        assert (key.revoked_at == (keys[i].revoked ? S_T0 + 100 : -1));
        uint8_t team_of[16];
        bool read_only = false;
        int checked = bk_keys_check (cache, text, team_of, &read_only);
        assert (checked == (keys[i].revoked ? -1 : 0));
        assert (keys[i].revoked ||
                (memcmp (team_of, keys[i].team, 16) == 0 && read_only == (i == 1)));
    }
    bk_keys_destroy (&cache);
    rig_v1_put (store, BK_DB_KEYS, keys[2].id, 16, "{s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "id",
                keys[2].id, "teamId", beta_text, "team", "beta", "scope", "full", "createdAt", S_T0,
                "revoked", 1, "hash", "00");
    assert (s_test_convert (store, BK_DB_KEYS, keys[2].id, 16, why) == S_BAD);
    assert (strcmp (why, "field 'hash' is malformed") == 0);

    //  a token: its sealed value from base64 text to bytes
    const char *token_id = "tok_4b3a247962ee66990becd8561790aa0f";
    uint8_t sealed[40], key[16 + BK_TOKEN_ID_SIZE];
    for (size_t i = 0; i < sizeof sealed; i++)
        sealed[i] = (uint8_t) (i * 37);
    char b64[sodium_base64_ENCODED_LEN (sizeof sealed, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (b64, sizeof b64, sealed, sizeof sealed, sodium_base64_VARIANT_ORIGINAL);
    memcpy (key, alpha, 16);
    memcpy (key + 16, token_id, BK_TOKEN_ID_SIZE);
    rig_v1_put (store, BK_DB_TOKENS, key, sizeof key, "{s:s, s:s, s:I, s:s}", "id", token_id,
                "name", "alpha-api", "createdAt", S_T0 + 5, "sealed", b64);
    assert (s_test_convert (store, BK_DB_TOKENS, key, sizeof key, NULL) == S_DONE);
    bk_token_t token;
    assert (bk_store_get (store, BK_DB_TOKENS, key, sizeof key, &val) == 0);
    assert (bk_token_decode (val.data, val.size, &token) == 0);
    assert (strcmp (token.id, token_id) == 0 && strcmp (token.name, "alpha-api") == 0);
    assert (token.created_at == S_T0 + 5 && token.sealed_size == sizeof sealed);
    assert (memcmp (token.sealed, sealed, sizeof sealed) == 0);
    assert (bk_tokens_exists (store, alpha, token_id));
    rig_v1_put (store, BK_DB_TOKENS, key, sizeof key, "{s:s, s:s, s:I, s:s}", "id", token_id,
                "name", "alpha-api", "createdAt", S_T0 + 5, "sealed", "not base64!");
    assert (s_test_convert (store, BK_DB_TOKENS, key, sizeof key, why) == S_BAD);
    assert (strcmp (why, "field 'sealed' is malformed") == 0);
}

void bk_upgrade_v1_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t alpha[16], beta[16];
    char alpha_text[AQ_UUID_TEXT], beta_text[AQ_UUID_TEXT];
    s_test_uuid (1, alpha, alpha_text);
    s_test_uuid (2, beta, beta_text);
    s_test_accounts (store, alpha, alpha_text, beta, beta_text);

    //  the scheduler's records go to its converter: converted, or left
    //  exactly as they were
    uint8_t schedule[16];
    char schedule_text[AQ_UUID_TEXT];
    s_test_uuid (900, schedule, schedule_text);
    rig_v1_put (store, BK_DB_SCHEDULES, schedule, 16, "{s:s, s:s, s:s, s:s}", "id", schedule_text,
                "team_id", alpha_text, "name", "nightly", "status", "active");
    bk_val_t val;
    assert (bk_store_get (store, BK_DB_SCHEDULES, schedule, 16, &val) == 0);
    uint8_t *before = malloc (val.size);
    memcpy (before, val.data, val.size);
    size_t before_size = val.size;
    int rc = s_test_convert (store, BK_DB_SCHEDULES, schedule, 16, NULL);
    assert (rc == S_LEFT || rc == S_DONE || rc == S_BAD);
    assert (bk_store_get (store, BK_DB_SCHEDULES, schedule, 16, &val) == 0);
    if (rc != S_DONE)
        assert (val.size == before_size && memcmp (val.data, before, val.size) == 0);
    free (before);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_upgrade_v1: ok\n");
}
