/*  keys.c - teams and API keys, kept in the store */
#include "keys.h"
#include "aq_proto.h"
#include "aq_uuid.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ID_HEX 16 //  key id: 8 random bytes in hex

json_t *bk_keys_team_get (bk_store_t *store, const uint8_t team[16]) {
    return bk_store_get_record (store, BK_DB_TEAMS, team, 16);
}

json_t *bk_keys_team_find (bk_store_t *store, const char *name) {
    bk_val_t val;
    if (!name || bk_store_get (store, BK_DB_TEAM_NAMES, name, strlen (name), &val) != 0 ||
        val.size != 16)
        return NULL;
    return bk_keys_team_get (store, val.data);
}

int bk_keys_team_save (bk_store_t *store, const json_t *team) {
    uint8_t id[16];
    if (aq_uuid_parse (json_string_value (json_object_get (team, "id")), id) != 0)
        return BK_ESTORE;
    return bk_store_put_record (store, BK_DB_TEAMS, id, 16, team);
}

char *bk_keys_new_secret (void) {
    uint8_t secret[32];
    char b64[64], *whsec = malloc (80);
    assert (whsec);
    randombytes_buf (secret, sizeof secret);
    sodium_bin2base64 (b64, sizeof b64, secret, sizeof secret, sodium_base64_VARIANT_ORIGINAL);
    snprintf (whsec, 80, "whsec_%s", b64);
    return whsec;
}

json_t *bk_keys_team_create (bk_store_t *store, const char *name, int64_t now) {
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 200)
        return NULL;
    json_t *existing = bk_keys_team_find (store, name);
    if (existing) {
        json_decref (existing);
        return NULL;
    }
    uint8_t id[16];
    char text[AQ_UUID_TEXT], *whsec = bk_keys_new_secret ();
    aq_uuid_new (id);
    json_t *team = json_pack ("{s:s, s:s, s:I, s:s}", "id", aq_uuid_format (id, text), "name", name,
                              "createdAt", (json_int_t) now, "signingSecret", whsec);
    free (whsec);
    if (bk_store_put_record (store, BK_DB_TEAMS, id, 16, team) != 0 ||
        bk_store_put (store, BK_DB_TEAM_NAMES, name, len, id, 16) != 0) {
        json_decref (team);
        return NULL;
    }
    return team;
}

json_t *bk_keys_team_list (bk_store_t *store) {
    json_t *teams = json_array ();
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TEAMS);
    bk_val_t k, v;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        json_t *team = aq_proto_unpack (v.data, v.size);
        if (team) {
            json_object_del (team, "signingSecret");
            json_array_append_new (teams, team);
        }
    }
    bk_cursor_close (&cursor);
    return teams;
}

static void s_hash (const char *key, char hex[65]) {
    uint8_t hash[32];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) key, strlen (key), NULL, 0);
    sodium_bin2hex (hex, 65, hash, sizeof hash);
}

static json_t *s_key_public (const json_t *record) {
    json_t *out = json_deep_copy (record);
    json_object_del (out, "hash");
    return out;
}

json_t *bk_keys_create (bk_store_t *store, const char *team_name, const char *scope, int64_t now) {
    if (!scope)
        scope = "full";
    if (strcmp (scope, "full") != 0 && strcmp (scope, "read") != 0)
        return NULL;
    json_t *team = bk_keys_team_find (store, team_name);
    if (!team)
        team = bk_keys_team_create (store, team_name, now);
    if (!team)
        return NULL;
    uint8_t id_bin[S_ID_HEX / 2], secret_bin[32];
    char id[S_ID_HEX + 1], secret[64], key[128], hash[65];
    randombytes_buf (id_bin, sizeof id_bin);
    randombytes_buf (secret_bin, sizeof secret_bin);
    sodium_bin2hex (id, sizeof id, id_bin, sizeof id_bin);
    sodium_bin2base64 (secret, sizeof secret, secret_bin, sizeof secret_bin,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf (key, sizeof key, "aq_%s_%s", id, secret);
    s_hash (key, hash);
    json_t *record =
        json_pack ("{s:s, s:O, s:O, s:s, s:I, s:b, s:s}", "id", id, "teamId",
                   json_object_get (team, "id"), "team", json_object_get (team, "name"), "scope",
                   scope, "createdAt", (json_int_t) now, "revoked", 0, "hash", hash);
    json_decref (team);
    json_t *out = NULL;
    if (bk_store_put_record (store, BK_DB_KEYS, id, S_ID_HEX, record) == 0) {
        out = s_key_public (record);
        json_object_set_new (out, "secret", json_string (key));
    }
    sodium_memzero (key, sizeof key);
    json_decref (record);
    return out;
}

json_t *bk_keys_list (bk_store_t *store, const char *team_name) {
    json_t *keys = json_array ();
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_KEYS);
    bk_val_t k, v;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        json_t *record = aq_proto_unpack (v.data, v.size);
        const char *team = json_string_value (json_object_get (record, "team"));
        if (record && (!team_name || (team && strcmp (team, team_name) == 0)))
            json_array_append_new (keys, s_key_public (record));
        json_decref (record);
    }
    bk_cursor_close (&cursor);
    return keys;
}

json_t *bk_keys_revoke (bk_store_t *store, json_t *cache, const char *id, int64_t now) {
    if (!id || strlen (id) != S_ID_HEX)
        return NULL;
    if (cache)
        json_object_del (cache, id);
    json_t *record = bk_store_get_record (store, BK_DB_KEYS, id, S_ID_HEX);
    if (!record)
        return NULL;
    json_object_set_new (record, "revoked", json_true ());
    json_object_set_new (record, "revokedAt", json_integer (now));
    json_t *out = bk_store_put_record (store, BK_DB_KEYS, id, S_ID_HEX, record) == 0
                      ? s_key_public (record)
                      : NULL;
    json_decref (record);
    return out;
}

int bk_keys_check (bk_store_t *store, json_t *cache, const char *key, uint8_t team[16],
                   bool *read_only) {
    if (!key || strlen (key) < 4 + S_ID_HEX + 1 || strncmp (key, "aq_", 3) != 0 ||
        key[3 + S_ID_HEX] != '_' || strlen (key) > 120)
        return -1;
    char id[S_ID_HEX + 1];
    memcpy (id, key + 3, S_ID_HEX);
    id[S_ID_HEX] = '\0';
    json_t *record = json_incref (json_object_get (cache, id));
    if (!record) {
        record = bk_store_get_record (store, BK_DB_KEYS, id, S_ID_HEX);
        if (!record)
            return -1;
        if (cache && json_object_size (cache) < 100000)
            json_object_set (cache, id, record);
    }
    char hash[65];
    s_hash (key, hash);
    const char *stored = json_string_value (json_object_get (record, "hash"));
    int rc = -1;
    if (stored && strlen (stored) == 64 && sodium_memcmp (stored, hash, 64) == 0 &&
        !json_is_true (json_object_get (record, "revoked")) &&
        aq_uuid_parse (json_string_value (json_object_get (record, "teamId")), team) == 0) {
        *read_only = strcmp (json_string_value (json_object_get (record, "scope")), "read") == 0;
        rc = 0;
    }
    json_decref (record);
    return rc;
}

void bk_keys_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    json_t *cache = json_object ();
    json_t *full = bk_keys_create (store, "acme", NULL, 1);
    json_t *read = bk_keys_create (store, "acme", "read", 2);
    json_t *other = bk_keys_create (store, "globex", "full", 3);
    assert (full && read && other);
    assert (!bk_keys_create (store, "acme", "admin", 4));
    assert (!bk_keys_team_create (store, "acme", 5)); //  taken
    const char *secret = json_string_value (json_object_get (full, "secret"));
    assert (strncmp (secret, "aq_", 3) == 0 && strlen (secret) == 3 + 16 + 1 + 43);

    uint8_t team[16], team2[16];
    bool read_only = true;
    assert (bk_keys_check (store, cache, secret, team, &read_only) == 0 && !read_only);
    assert (bk_keys_check (store, cache, json_string_value (json_object_get (read, "secret")),
                           team2, &read_only) == 0 &&
            read_only);
    assert (memcmp (team, team2, 16) == 0);
    assert (bk_keys_check (store, cache, json_string_value (json_object_get (other, "secret")),
                           team2, &read_only) == 0 &&
            memcmp (team, team2, 16) != 0);
    char forged[128];
    snprintf (forged, sizeof forged, "%s", secret);
    forged[strlen (forged) - 1] ^= 1;
    assert (bk_keys_check (store, cache, forged, team, &read_only) == -1);
    assert (bk_keys_check (store, cache, "garbage", team, &read_only) == -1);
    assert (bk_keys_check (store, cache, NULL, team, &read_only) == -1);

    json_t *list = bk_keys_list (store, "acme");
    assert (json_array_size (list) == 2 && !json_object_get (json_array_get (list, 0), "hash"));
    json_decref (list);
    json_t *teams = bk_keys_team_list (store);
    assert (json_array_size (teams) == 2);
    json_decref (teams);

    json_t *revoked =
        bk_keys_revoke (store, cache, json_string_value (json_object_get (full, "id")), 9);
    assert (revoked && json_is_true (json_object_get (revoked, "revoked")));
    assert (bk_keys_check (store, cache, secret, team, &read_only) == -1);
    assert (!bk_keys_revoke (store, cache, "0000000000000000", 9));
    json_decref (revoked);
    assert (bk_keys_check (store, NULL, "garbage", team, &read_only) == -1);
    json_decref (cache);
    json_decref (full);
    json_decref (read);
    json_decref (other);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_keys: ok\n");
}
