/*  tokens.c - the token vault's records: secrets sealed by a vault plugin

    Changing the record: add a key to the table below (never reuse one) and
    to encode/decode; reshaping a key's value means bumping BK_TOKEN_RECORD.
*/
#include "tokens.h"
#include "aq_json.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "task_request.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Record keys.
enum { K_VERSION = 0, K_ID, K_NAME, K_CREATED_AT, K_SEALED };

#define S_KEY_SIZE (16 + BK_TOKEN_ID_SIZE) //  store key: team(16) token id

void bk_token_encode (const bk_token_t *self, aq_writer_t *w) {
    aq_write_map (w, 5);
    aq_write_int (w, K_VERSION), aq_write_int (w, BK_TOKEN_RECORD);
    aq_write_int (w, K_ID), aq_write_str (w, self->id);
    aq_write_int (w, K_NAME), aq_write_str (w, self->name);
    aq_write_int (w, K_CREATED_AT), aq_write_int (w, self->created_at);
    aq_write_int (w, K_SEALED), aq_write_bin (w, self->sealed, self->sealed_size);
}

int bk_token_decode (const uint8_t *data, size_t size, bk_token_t *token) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return -1;
    memset (token, 0, sizeof *token);
    token->created_at = -1;
    bool versioned = false, ok = true;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case K_VERSION:
            versioned = value.type == AQ_NODE_INT && value.i == BK_TOKEN_RECORD;
            break;
        case K_ID:
            ok &=
                aq_node_strcpy (&value, token->id, sizeof token->id) && bk_tokens_is_id (token->id);
            break;
        case K_NAME:
            ok &= aq_node_strcpy (&value, token->name, sizeof token->name);
            break;
        case K_CREATED_AT:
            ok &= value.type == AQ_NODE_INT;
            token->created_at = value.i;
            break;
        case K_SEALED:
            ok &= value.type == AQ_NODE_BIN;
            token->sealed = value.data;
            token->sealed_size = value.count;
            break;
        }
    }
    return ok && versioned && *token->id && *token->name && token->sealed ? 0 : -1;
}

void bk_token_write_public (const bk_token_t *self, aq_writer_t *w) {
    char stamp[32];
    aq_write_map (w, 3);
    aq_write_kv_str (w, "id", self->id);
    aq_write_kv_str (w, "name", self->name);
    aq_write_kv_str (w, "createdAt", aq_time_format (self->created_at, stamp));
}

//  --------------------------------------------------------------------------

bool bk_tokens_is_id (const char *text) {
    if (!text || strlen (text) != BK_TOKEN_ID_SIZE || strncmp (text, "tok_", 4) != 0)
        return false;
    for (const char *p = text + 4; *p; p++)
        if (!isxdigit ((unsigned char) *p) || isupper ((unsigned char) *p))
            return false;
    return true;
}

//  The store key of a token; false when id is no token id.
static bool s_key (uint8_t key[S_KEY_SIZE], const uint8_t team[16], const char *id) {
    if (!bk_tokens_is_id (id))
        return false;
    memcpy (key, team, 16);
    memcpy (key + 16, id, BK_TOKEN_ID_SIZE);
    return true;
}

//  The token's record into *token (sealed borrowed from the store until
//  the transaction ends): 0, BK_NOTFOUND, or a store error.
static int s_load (bk_store_t *store, const uint8_t team[16], const char *id, bk_token_t *token) {
    uint8_t key[S_KEY_SIZE];
    bk_val_t val;
    if (!s_key (key, team, id))
        return BK_NOTFOUND;
    int rc = bk_store_get (store, BK_DB_TOKENS, key, sizeof key, &val);
    if (rc == 0 &&
        (bk_token_decode (val.data, val.size, token) != 0 || strcmp (token->id, id) != 0))
        rc = BK_NOTFOUND;
    return rc;
}

//  The request's name and value checked, the seed's messages: NULL or
//  the message.
static const char *s_check (const aq_node_t *request, bk_token_t *token, aq_node_t *value,
                            char *errbuf, size_t errbuf_size) {
    if (!request || request->type != AQ_NODE_MAP)
        return "Request body must be a JSON object";
    static const char *const fields[] = {"name", "value", NULL};
    const char *error = bk_task_unknown_field (request, fields, "", errbuf, errbuf_size);
    if (error)
        return error;
    aq_node_t name;
    if (!aq_node_get (request, "name", &name) || aq_node_is_nil (&name))
        return "name is required";
    if (!aq_node_is_str (&name) || name.count == 0 ||
        !aq_node_strcpy (&name, token->name, sizeof token->name))
        return "name must be a string of 1 to 200 characters";
    if (!aq_node_get (request, "value", value) || aq_node_is_nil (value))
        return "value is required";
    if (!aq_node_is_str (value))
        return "value must be a string";
    if (value->count > BK_TOKENS_MAX_VALUE)
        return "value must be at most 8192 bytes";
    if (memchr (value->data, '\0', value->count) || memchr (value->data, '\r', value->count) ||
        memchr (value->data, '\n', value->count))
        return "value must not contain CR, LF or NUL characters";
    return NULL;
}

int bk_tokens_create (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                      const aq_node_t *request, int64_t now, bk_token_t *token, const char **error,
                      char *errbuf, size_t errbuf_size) {
    memset (token, 0, sizeof *token);
    aq_node_t value;
    if ((*error = s_check (request, token, &value, errbuf, errbuf_size)) || !vault)
        return -1;
    uint8_t raw[16];
    randombytes_buf (raw, sizeof raw);
    memcpy (token->id, "tok_", 4);
    sodium_bin2hex (token->id + 4, sizeof token->id - 4, raw, sizeof raw);
    token->created_at = now;
    char team_text[AQ_UUID_TEXT];
    uint8_t *sealed = NULL;
    size_t sealed_size = 0;
    if (aq_plugin_vault_seal (vault, aq_uuid_format (team, team_text), token->id, value.data,
                              value.count, &sealed, &sealed_size) != 0)
        return -1;
    token->sealed = sealed;
    token->sealed_size = sealed_size;
    aq_writer_t w;
    aq_writer_init (&w);
    bk_token_encode (token, &w);
    uint8_t key[S_KEY_SIZE];
    s_key (key, team, token->id);
    int rc = bk_store_put_writer (store, BK_DB_TOKENS, key, sizeof key, &w);
    aq_writer_release (&w);
    free (sealed);
    token->sealed = NULL;
    token->sealed_size = 0;
    return rc == 0 ? 0 : -1;
}

size_t bk_tokens_write_list (bk_store_t *store, const uint8_t team[16], aq_writer_t *w) {
    size_t mark = aq_write_array_open (w), n = 0;
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TOKENS);
    bk_val_t k, v;
    bk_token_t token;
    for (int rc = bk_cursor_seek (cursor, team, 16, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size < 16 || memcmp (k.data, team, 16) != 0)
            break;
        if (bk_token_decode (v.data, v.size, &token) == 0) {
            bk_token_write_public (&token, w);
            n++;
        }
    }
    bk_cursor_close (&cursor);
    aq_write_array_close (w, mark, (uint32_t) n);
    return n;
}

int bk_tokens_delete (bk_store_t *store, const uint8_t team[16], const char *id,
                      bk_token_t *token) {
    int rc = s_load (store, team, id, token);
    token->sealed = NULL; //  the bytes go with the record
    token->sealed_size = 0;
    if (rc != 0)
        return rc;
    uint8_t key[S_KEY_SIZE];
    s_key (key, team, id);
    return bk_store_del (store, BK_DB_TOKENS, key, sizeof key);
}

bool bk_tokens_exists (bk_store_t *store, const uint8_t team[16], const char *id) {
    uint8_t key[S_KEY_SIZE];
    bk_val_t val;
    return s_key (key, team, id) && bk_store_get (store, BK_DB_TOKENS, key, sizeof key, &val) == 0;
}

int bk_tokens_open (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                    const char *id, char **value, size_t *size) {
    bk_token_t token;
    if (!vault || s_load (store, team, id, &token) != 0)
        return -1;
    char team_text[AQ_UUID_TEXT];
    return aq_plugin_vault_open (vault, aq_uuid_format (team, team_text), id, token.sealed,
                                 token.sealed_size, value, size);
}

const char *bk_tokens_check_headers (bk_store_t *store, const uint8_t team[16],
                                     const aq_node_t *headers, char *errbuf, size_t errbuf_size) {
    if (headers->type != AQ_NODE_MAP)
        return NULL;
    aq_iter_t it;
    aq_node_iter (headers, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        if (!aq_node_is_str (&value) || value.count < 4 || memcmp (value.data, "tok_", 4) != 0)
            continue;
        char id[BK_TOKEN_ID_SIZE + 1];
        if (aq_node_strcpy (&value, id, sizeof id) && bk_tokens_exists (store, team, id))
            continue;
        int shown = (int) (value.count < 64 ? value.count : 64);
        snprintf (errbuf, errbuf_size, "Unknown token: %.*s", shown, (const char *) value.data);
        return errbuf;
    }
    return NULL;
}

//  --------------------------------------------------------------------------

//  Runs bk_tokens_create on a JSON body; returns its result.
static int s_create (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                     const char *json, bk_token_t *token, const char **error, char *errbuf,
                     size_t size) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_node_t request;
    size_t bytes;
    assert (aq_json_parse (json, &w) == 0);
    const uint8_t *data = aq_writer_data (&w, &bytes);
    assert (aq_msg_parse (data, bytes, &request) == 0);
    int rc =
        bk_tokens_create (store, vault, team, &request, 1705314600000, token, error, errbuf, size);
    aq_writer_release (&w);
    return rc;
}

static void s_test_record (void) {
    bk_token_t token = {.id = "tok_0123456789abcdef0123456789abcdef",
                        .name = "fal key",
                        .created_at = 1705314600000,
                        .sealed = (const uint8_t *) "\x00\x01sealed",
                        .sealed_size = 8};
    aq_writer_t w;
    aq_writer_init (&w);
    bk_token_encode (&token, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_token_t back;
    assert (bk_token_decode (data, size, &back) == 0);
    assert (strcmp (back.id, token.id) == 0 && strcmp (back.name, "fal key") == 0);
    assert (back.created_at == token.created_at && back.sealed_size == 8);
    assert (memcmp (back.sealed, "\x00\x01sealed", 8) == 0);
    assert (back.sealed >= data && back.sealed < data + size); //  borrowed, not copied
    assert (bk_token_decode (data, size - 1, &back) == -1);    //  cut short

    aq_writer_t shown;
    aq_writer_init (&shown);
    bk_token_write_public (&token, &shown);
    aq_node_t map, value;
    data = aq_writer_data (&shown, &size);
    assert (aq_msg_parse (data, size, &map) == 0 && map.count == 3);
    assert (aq_node_get (&map, "createdAt", &value) &&
            aq_node_streq (&value, "2024-01-15T10:30:00.000Z"));
    assert (aq_node_get (&map, "id", &value) && aq_node_streq (&value, token.id));
    assert (!aq_node_get (&map, "sealed", &value) && !aq_node_get (&map, "value", &value));
    aq_writer_release (&shown);

    //  refused: another version, no sealed bytes, a malformed id
    struct {
        int version;
        const char *id;
        bool sealed;
    } bad[] = {{1, token.id, true},
               {BK_TOKEN_RECORD, token.id, false},
               {BK_TOKEN_RECORD, "tok_0123", true}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aq_writer_reset (&w);
        aq_write_map (&w, 3 + bad[i].sealed);
        aq_write_int (&w, K_VERSION), aq_write_int (&w, bad[i].version);
        aq_write_int (&w, K_ID), aq_write_str (&w, bad[i].id);
        aq_write_int (&w, K_NAME), aq_write_str (&w, "x");
        if (bad[i].sealed)
            aq_write_int (&w, K_SEALED), aq_write_bin (&w, "s", 1);
        data = aq_writer_data (&w, &size);
        assert (bk_token_decode (data, size, &back) == -1);
    }
    assert (bk_token_decode ((const uint8_t *) "\x92\x01\x02", 3, &back) == -1);
    aq_writer_release (&w);
}

void bk_tokens_test (bool verbose) {
    assert (bk_tokens_is_id ("tok_0123456789abcdef0123456789abcdef"));
    assert (!bk_tokens_is_id ("tok_0123456789ABCDEF0123456789abcdef"));
    assert (!bk_tokens_is_id ("tok_123") && !bk_tokens_is_id (NULL));
    s_test_record ();

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
    bk_token_t token;
    char long_value[BK_TOKENS_MAX_VALUE + 64];
    snprintf (long_value, sizeof long_value, "{\"name\": \"x\", \"value\": \"%0*d\"}",
              BK_TOKENS_MAX_VALUE + 1, 0);
    struct {
        const char *body, *error;
    } bad[] = {
        {"[]", "Request body must be a JSON object"},
        {"{}", "name is required"},
        {"{\"name\": null, \"value\": \"v\"}", "name is required"},
        {"{\"name\": \"x\"}", "value is required"},
        {"{\"name\": 5, \"value\": \"v\"}", "name must be a string of 1 to 200 characters"},
        {"{\"name\": \"\", \"value\": \"v\"}", "name must be a string of 1 to 200 characters"},
        {"{\"name\": \"x\", \"value\": 5}", "value must be a string"},
        {long_value, "value must be at most 8192 bytes"},
        {"{\"name\": \"x\", \"value\": \"a\\r\\nb\"}",
         "value must not contain CR, LF or NUL characters"},
        {"{\"name\": \"x\", \"value\": \"v\", \"extra\": 1}", "Unknown field: extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert (s_create (store, vault, team, bad[i].body, &token, &error, errbuf, sizeof errbuf) ==
                -1);
        assert (error && strcmp (error, bad[i].error) == 0);
    }
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 2);
    aq_write_kv_str (&w, "name", "x");
    aq_write_str (&w, "value"), aq_write_strn (&w, "a\0b", 3); //  JSON's "a\u0000b"
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t request;
    assert (aq_msg_parse (data, size, &request) == 0);
    assert (bk_tokens_create (store, vault, team, &request, 1, &token, &error, errbuf,
                              sizeof errbuf) == -1);
    assert (strcmp (error, "value must not contain CR, LF or NUL characters") == 0);
    assert (bk_tokens_create (store, vault, team, NULL, 1, &token, &error, errbuf, sizeof errbuf) ==
            -1);
    assert (strcmp (error, "Request body must be a JSON object") == 0);
    //  no vault: a valid body fails without a client message
    assert (s_create (store, NULL, team, "{\"name\": \"x\", \"value\": \"v\"}", &token, &error,
                      errbuf, sizeof errbuf) == -1 &&
            !error);

    aq_writer_reset (&w);
    aq_write_map (&w, 2);
    aq_write_kv_str (&w, "Authorization", "tok_0123456789abcdef0123456789abcdef");
    aq_write_kv_str (&w, "X-Plain", "tokens");
    data = aq_writer_data (&w, &size);
    aq_node_t headers;
    assert (aq_msg_parse (data, size, &headers) == 0);
    assert (bk_tokens_check_headers (store, team, &headers, errbuf, sizeof errbuf) == errbuf);
    assert (strcmp (errbuf, "Unknown token: tok_0123456789abcdef0123456789abcdef") == 0);

    if (vault) {
        assert (s_create (store, vault, team,
                          "{\"name\": \"fal key\", \"value\": \"Key s3cret-value\"}", &token,
                          &error, errbuf, sizeof errbuf) == 0);
        assert (!token.sealed && token.created_at == 1705314600000);
        assert (bk_tokens_is_id (token.id) && bk_tokens_exists (store, team, token.id));
        assert (strcmp (token.name, "fal key") == 0);
        assert (!bk_tokens_exists (store, other, token.id)); //  another team's token is unknown
        char *value = NULL;
        size_t value_size = 0;
        assert (bk_tokens_open (store, vault, team, token.id, &value, &value_size) == 0);
        assert (value_size == 16 && strcmp (value, "Key s3cret-value") == 0);
        aq_plugin_secret_free (&value, value_size);
        assert (bk_tokens_open (store, vault, other, token.id, &value, &value_size) == -1);
        assert (bk_tokens_open (store, NULL, team, token.id, &value, &value_size) == -1 && !value);
        //  what the store holds is sealed: the value is nowhere in it
        uint8_t key[S_KEY_SIZE];
        bk_val_t val;
        s_key (key, team, token.id);
        assert (bk_store_get (store, BK_DB_TOKENS, key, sizeof key, &val) == 0);
        assert (!memmem (val.data, val.size, "s3cret", 6));

        //  headers: the team's token passes, another team's or a made-up one does not
        aq_writer_reset (&w);
        aq_write_map (&w, 3);
        aq_write_kv_str (&w, "Authorization", token.id);
        aq_write_kv_str (&w, "X-Plain", "tokens");
        aq_write_kv_int (&w, "X-Number", 5);
        data = aq_writer_data (&w, &size);
        assert (aq_msg_parse (data, size, &headers) == 0);
        assert (!bk_tokens_check_headers (store, team, &headers, errbuf, sizeof errbuf));
        assert (bk_tokens_check_headers (store, other, &headers, errbuf, sizeof errbuf));
        assert (strncmp (errbuf, "Unknown token: tok_", 19) == 0);
        aq_writer_reset (&w);
        aq_write_map (&w, 1);
        aq_write_kv_str (&w, "Authorization",
                         "tok_not-a-token-at-all-and-far-longer-than-sixty-four-bytes-"
                         "so-it-is-cut");
        data = aq_writer_data (&w, &size);
        assert (aq_msg_parse (data, size, &headers) == 0);
        assert (bk_tokens_check_headers (store, team, &headers, errbuf, sizeof errbuf));
        assert (strlen (errbuf) == strlen ("Unknown token: ") + 64);

        //  a second token, then the list (public shapes) and deletion
        bk_token_t second;
        assert (s_create (store, vault, team, "{\"name\": \"other\", \"value\": \"v\"}", &second,
                          &error, errbuf, sizeof errbuf) == 0);
        aq_writer_reset (&w);
        assert (bk_tokens_write_list (store, team, &w) == 2);
        data = aq_writer_data (&w, &size);
        aq_node_t list, item, field;
        assert (aq_msg_parse (data, size, &list) == 0 && list.count == 2);
        aq_iter_t it;
        aq_node_iter (&list, &it);
        while (aq_iter_next (&it, NULL, &item)) {
            assert (item.count == 3 && aq_node_get (&item, "name", &field));
            assert (!aq_node_get (&item, "sealed", &field));
        }
        aq_writer_reset (&w);
        assert (bk_tokens_write_list (store, other, &w) == 0);
        //  a garbled record is skipped by the list and opens nothing
        s_key (key, team, second.id);
        assert (bk_store_put (store, BK_DB_TOKENS, key, sizeof key, "\xc1", 1) == 0);
        aq_writer_reset (&w);
        assert (bk_tokens_write_list (store, team, &w) == 1);
        assert (bk_tokens_open (store, vault, team, second.id, &value, &value_size) == -1);

        bk_token_t gone;
        assert (bk_tokens_delete (store, other, token.id, &gone) == BK_NOTFOUND);
        assert (bk_tokens_delete (store, team, token.id, &gone) == 0);
        assert (strcmp (gone.id, token.id) == 0 && strcmp (gone.name, "fal key") == 0);
        assert (!gone.sealed && !bk_tokens_exists (store, team, token.id));
        assert (bk_tokens_delete (store, team, token.id, &gone) == BK_NOTFOUND);
        assert (bk_tokens_delete (store, team, "nope", &gone) == BK_NOTFOUND);
    } else if (verbose)
        printf ("bk_tokens: no vault plugin found, sealing not tested\n");
    aq_writer_release (&w);
    aq_plugin_loader_destroy (&loader);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_tokens: ok\n");
}
