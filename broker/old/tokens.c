/*  tokens.c - the token vault's records: secrets sealed by a vault plugin */
#include "tokens.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "task.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ID_SIZE 36 //  "tok_" and 32 hex digits

bool bk_tokens_is_id (const char *text) {
    if (!text || strlen (text) != S_ID_SIZE || strncmp (text, "tok_", 4) != 0)
        return false;
    for (const char *p = text + 4; *p; p++)
        if (!isxdigit ((unsigned char) *p) || isupper ((unsigned char) *p))
            return false;
    return true;
}

static size_t s_key (uint8_t key[16 + S_ID_SIZE], const uint8_t team[16], const char *id) {
    memcpy (key, team, 16);
    memcpy (key + 16, id, S_ID_SIZE);
    return 16 + S_ID_SIZE;
}

static json_t *s_load (bk_store_t *store, const uint8_t team[16], const char *id) {
    if (!bk_tokens_is_id (id))
        return NULL;
    uint8_t key[16 + S_ID_SIZE];
    return bk_store_get_record (store, BK_DB_TOKENS, key, s_key (key, team, id));
}

static json_t *s_public (const json_t *record) {
    json_t *out = json_deep_copy (record);
    json_object_del (out, "sealed");
    return out;
}

json_t *bk_tokens_create (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                          const json_t *request, int64_t now, const char **error, char *errbuf,
                          size_t errbuf_size) {
    *error = NULL;
    if (!json_is_object (request)) {
        *error = "Request body must be a JSON object";
        return NULL;
    }
    static const char *const fields[] = {"name", "value", NULL};
    if ((*error = bk_task_unknown_field (request, fields, "", errbuf, errbuf_size)))
        return NULL;
    json_t *name = json_object_get (request, "name");
    json_t *secret = json_object_get (request, "value");
    if (!name || json_is_null (name))
        *error = "name is required";
    else if (!json_is_string (name) || json_string_length (name) == 0 ||
             json_string_length (name) > 200)
        *error = "name must be a string of 1 to 200 characters";
    else if (!secret || json_is_null (secret))
        *error = "value is required";
    else if (!json_is_string (secret))
        *error = "value must be a string";
    else if (json_string_length (secret) > BK_TOKENS_MAX_VALUE)
        *error = "value must be at most 8192 bytes";
    else if (strlen (json_string_value (secret)) != json_string_length (secret) ||
             strpbrk (json_string_value (secret), "\r\n"))
        *error = "value must not contain CR, LF or NUL characters";
    if (*error)
        return NULL;
    if (!vault)
        return NULL;

    uint8_t raw[16];
    char id[S_ID_SIZE + 1] = "tok_", team_text[AQ_UUID_TEXT];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2hex (id + 4, sizeof id - 4, raw, sizeof raw);
    aq_uuid_format (team, team_text);
    uint8_t *sealed = NULL;
    size_t sealed_size = 0;
    if (aq_plugin_vault_seal (vault, team_text, id, json_string_value (secret),
                              json_string_length (secret), &sealed, &sealed_size) != 0)
        return NULL;
    size_t b64_size = sodium_base64_ENCODED_LEN (sealed_size, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc (b64_size);
    assert (b64);
    sodium_bin2base64 (b64, b64_size, sealed, sealed_size, sodium_base64_VARIANT_ORIGINAL);
    free (sealed);
    json_t *record = json_pack ("{s:s, s:O, s:I, s:s}", "id", id, "name", name, "createdAt",
                                (json_int_t) now, "sealed", b64);
    free (b64);
    uint8_t key[16 + S_ID_SIZE];
    int rc = bk_store_put_record (store, BK_DB_TOKENS, key, s_key (key, team, id), record);
    json_t *out = rc == 0 ? s_public (record) : NULL;
    json_decref (record);
    return out;
}

json_t *bk_tokens_list (bk_store_t *store, const uint8_t team[16]) {
    json_t *tokens = json_array ();
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TOKENS);
    bk_val_t k, v;
    for (int rc = bk_cursor_seek (cursor, team, 16, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size < 16 || memcmp (k.data, team, 16) != 0)
            break;
        json_t *record = aq_proto_unpack (v.data, v.size);
        if (record)
            json_array_append_new (tokens, s_public (record));
        json_decref (record);
    }
    bk_cursor_close (&cursor);
    return tokens;
}

json_t *bk_tokens_delete (bk_store_t *store, const uint8_t team[16], const char *id) {
    json_t *record = s_load (store, team, id);
    if (!record)
        return NULL;
    uint8_t key[16 + S_ID_SIZE];
    json_t *out = bk_store_del (store, BK_DB_TOKENS, key, s_key (key, team, id)) == 0
                      ? s_public (record)
                      : NULL;
    json_decref (record);
    return out;
}

bool bk_tokens_exists (bk_store_t *store, const uint8_t team[16], const char *id) {
    uint8_t key[16 + S_ID_SIZE];
    bk_val_t val;
    return bk_tokens_is_id (id) &&
           bk_store_get (store, BK_DB_TOKENS, key, s_key (key, team, id), &val) == 0;
}

int bk_tokens_open (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                    const char *id, char **value, size_t *size) {
    json_t *record = vault ? s_load (store, team, id) : NULL;
    const char *b64 = json_string_value (json_object_get (record, "sealed"));
    int rc = -1;
    if (b64) {
        size_t cap = strlen (b64), sealed_size = 0;
        uint8_t *sealed = malloc (cap + 1);
        assert (sealed);
        char team_text[AQ_UUID_TEXT];
        if (sodium_base642bin (sealed, cap, b64, strlen (b64), NULL, &sealed_size, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0)
            rc = aq_plugin_vault_open (vault, aq_uuid_format (team, team_text), id, sealed,
                                       sealed_size, value, size);
        free (sealed);
    }
    json_decref (record);
    return rc;
}

const char *bk_tokens_check_headers (bk_store_t *store, const uint8_t team[16],
                                     const json_t *headers, char *errbuf, size_t errbuf_size) {
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) headers, name, value) {
        const char *text = json_string_value (value);
        if (text && strncmp (text, "tok_", 4) == 0 && !bk_tokens_exists (store, team, text)) {
            snprintf (errbuf, errbuf_size, "Unknown token: %.64s", text);
            return errbuf;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------

void bk_tokens_test (bool verbose) {
    assert (bk_tokens_is_id ("tok_0123456789abcdef0123456789abcdef"));
    assert (!bk_tokens_is_id ("tok_0123456789ABCDEF0123456789abcdef"));
    assert (!bk_tokens_is_id ("tok_123") && !bk_tokens_is_id (NULL));

    char *dir_name = aq_plugin_loader_default_dir ();
    aq_plugin_loader_t *loader = NULL;
    const aq_plugin_vault_t *vault = NULL;
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    if (dir_name) {
        loader = aq_plugin_loader_new (dir);
        aq_plugin_loader_load_dir (loader, dir_name);
        vault = aq_plugin_loader_vault (loader, NULL);
    }
    free (dir_name);
    uint8_t team[16], other[16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    const char *error;
    char errbuf[128];
    struct {
        const char *body, *error;
    } bad[] = {
        {"{}", "name is required"},
        {"{\"name\": \"x\"}", "value is required"},
        {"{\"name\": 5, \"value\": \"v\"}", "name must be a string of 1 to 200 characters"},
        {"{\"name\": \"x\", \"value\": 5}", "value must be a string"},
        {"{\"name\": \"x\", \"value\": \"a\\r\\nb\"}",
         "value must not contain CR, LF or NUL characters"},
        {"{\"name\": \"x\", \"value\": \"a\\u0000b\"}",
         "value must not contain CR, LF or NUL characters"},
        {"{\"name\": \"x\", \"value\": \"v\", \"extra\": 1}", "Unknown field: extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *body = json_loads (bad[i].body, JSON_ALLOW_NUL, NULL);
        assert (body);
        assert (!bk_tokens_create (store, vault, team, body, 1, &error, errbuf, sizeof errbuf));
        assert (error && strcmp (error, bad[i].error) == 0);
        json_decref (body);
    }
    if (vault) {
        json_t *body = json_pack ("{s:s, s:s}", "name", "fal key", "value", "Key s3cret-value");
        json_t *token =
            bk_tokens_create (store, vault, team, body, 1, &error, errbuf, sizeof errbuf);
        json_decref (body);
        assert (token && !json_object_get (token, "sealed") && !json_object_get (token, "value"));
        const char *id = json_string_value (json_object_get (token, "id"));
        assert (bk_tokens_is_id (id) && bk_tokens_exists (store, team, id));
        assert (!bk_tokens_exists (store, other, id)); //  another team's token is unknown
        char *value = NULL;
        size_t size = 0;
        assert (bk_tokens_open (store, vault, team, id, &value, &size) == 0);
        assert (size == 16 && strcmp (value, "Key s3cret-value") == 0);
        aq_plugin_secret_free (&value, size);
        assert (bk_tokens_open (store, vault, other, id, &value, &size) == -1);

        json_t *headers = json_pack ("{s:s, s:s}", "Authorization", id, "X-Plain", "tokens");
        assert (!bk_tokens_check_headers (store, team, headers, errbuf, sizeof errbuf));
        assert (bk_tokens_check_headers (store, other, headers, errbuf, sizeof errbuf));
        assert (strncmp (errbuf, "Unknown token: tok_", 19) == 0);
        json_decref (headers);

        json_t *list = bk_tokens_list (store, team);
        assert (json_array_size (list) == 1);
        json_decref (list);
        json_t *gone = bk_tokens_delete (store, team, id);
        assert (gone && !bk_tokens_exists (store, team, id));
        json_decref (gone);
        json_decref (token);
    } else if (verbose)
        printf ("bk_tokens: no vault plugin found, sealing not tested\n");
    aq_plugin_loader_destroy (&loader);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_tokens: ok\n");
}
