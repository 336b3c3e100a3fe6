/*  keys.c - teams and API keys: typed records in the store, and their caches

    Changing a record: add a key to its table below (never reuse one) and
    to encode/decode; reshaping a key's value means bumping its version.
*/
#include "keys.h"
#include "aq_time.h"
#include "aq_uuid.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Team record keys (BK_DB_TEAMS: team id(16) -> record).
enum { T_VERSION = 0, T_ID, T_NAME, T_CREATED_AT, T_SECRET, T_RPS, T_BURST };
//  Key record keys (BK_DB_KEYS: key id (16 hex digits) -> record).
enum { K_VERSION = 0, K_ID, K_TEAM, K_SCOPE, K_HASH, K_CREATED_AT, K_REVOKED_AT };

#define S_CACHE_MAX 100000 //  entries per cache; past it, records are read each time

struct _bk_keys_t {
    bk_store_t *store; //  borrowed
    zhashx_t *teams;   //  team id (16 bytes) -> bk_team_t (owned)
    zhashx_t *keys;    //  key id (hex text) -> bk_key_t (owned)
    bk_team_t spare;   //  a team read while the cache is full
};

//  --------------------------------------------------------------------------
//  The records

static void s_kv_int (aq_writer_t *w, int key, int64_t value) {
    aq_write_int (w, key);
    aq_write_int (w, value);
}

static void s_kv_str (aq_writer_t *w, int key, const char *value) {
    aq_write_int (w, key);
    aq_write_str (w, value);
}

static void s_kv_bin (aq_writer_t *w, int key, const void *data, size_t size) {
    aq_write_int (w, key);
    aq_write_bin (w, data, size);
}

static void s_kv_double (aq_writer_t *w, int key, double value) {
    aq_write_int (w, key);
    aq_write_double (w, value);
}

//  A bin node of exactly size bytes into out.
static bool s_bin (const aq_node_t *node, void *out, size_t size) {
    if (node->type != AQ_NODE_BIN || node->count != size)
        return false;
    memcpy (out, node->data, size);
    return true;
}

void bk_team_encode (const bk_team_t *self, aq_writer_t *w) {
    bool secret = *self->secret != '\0';
    aq_write_map (w, 4 + secret + 2 * self->limited);
    s_kv_int (w, T_VERSION, BK_TEAM_RECORD);
    s_kv_bin (w, T_ID, self->id, 16);
    s_kv_str (w, T_NAME, self->name);
    s_kv_int (w, T_CREATED_AT, self->created_at);
    if (secret)
        s_kv_str (w, T_SECRET, self->secret);
    if (self->limited) {
        s_kv_double (w, T_RPS, self->rps);
        s_kv_double (w, T_BURST, self->burst);
    }
}

int bk_team_decode (const uint8_t *data, size_t size, bk_team_t *team) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return -1;
    memset (team, 0, sizeof *team);
    team->created_at = -1;
    bool versioned = false, id = false, ok = true;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case T_VERSION:
            versioned = value.type == AQ_NODE_INT && value.i == BK_TEAM_RECORD;
            break;
        case T_ID:
            id = s_bin (&value, team->id, 16);
            break;
        case T_NAME:
            ok &= aq_node_strcpy (&value, team->name, sizeof team->name);
            break;
        case T_CREATED_AT:
            ok &= value.type == AQ_NODE_INT;
            team->created_at = value.i;
            break;
        case T_SECRET:
            ok &= aq_node_strcpy (&value, team->secret, sizeof team->secret);
            break;
        case T_RPS:
            ok &= aq_node_number (&value, &team->rps);
            team->limited = true;
            break;
        case T_BURST:
            ok &= aq_node_number (&value, &team->burst);
            break;
        }
    }
    return ok && versioned && id && *team->name ? 0 : -1;
}

static void s_time (aq_writer_t *w, const char *key, int64_t ms) {
    char stamp[32];
    aq_write_kv_str (w, key, aq_time_format (ms, stamp));
}

static void s_uuid_text (aq_writer_t *w, const char *key, const uint8_t id[16]) {
    char text[AQ_UUID_TEXT];
    aq_write_kv_str (w, key, aq_uuid_format (id, text));
}

void bk_team_write_public (const bk_team_t *self, bool with_secret, aq_writer_t *w) {
    with_secret = with_secret && *self->secret;
    aq_write_map (w, 3 + with_secret + self->limited);
    s_uuid_text (w, "id", self->id);
    aq_write_kv_str (w, "name", self->name);
    s_time (w, "createdAt", self->created_at);
    if (with_secret)
        aq_write_kv_str (w, "signingSecret", self->secret);
    if (self->limited) {
        aq_write_str (w, "rateLimit");
        aq_write_map (w, 2);
        aq_write_str (w, "rps"), aq_write_double (w, self->rps);
        aq_write_str (w, "burst"), aq_write_double (w, self->burst);
    }
}

void bk_key_encode (const bk_key_t *self, aq_writer_t *w) {
    bool revoked = self->revoked_at >= 0;
    aq_write_map (w, 6 + revoked);
    s_kv_int (w, K_VERSION, BK_KEY_RECORD);
    s_kv_str (w, K_ID, self->id);
    s_kv_bin (w, K_TEAM, self->team, 16);
    s_kv_int (w, K_SCOPE, self->scope);
    s_kv_bin (w, K_HASH, self->hash, 32);
    s_kv_int (w, K_CREATED_AT, self->created_at);
    if (revoked)
        s_kv_int (w, K_REVOKED_AT, self->revoked_at);
}

int bk_key_decode (const uint8_t *data, size_t size, bk_key_t *key) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return -1;
    memset (key, 0, sizeof *key);
    key->created_at = key->revoked_at = -1;
    bool versioned = false, team = false, hash = false, ok = true;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        switch (name.type == AQ_NODE_INT ? name.i : -1) {
        case K_VERSION:
            versioned = value.type == AQ_NODE_INT && value.i == BK_KEY_RECORD;
            break;
        case K_ID:
            ok &= aq_node_strcpy (&value, key->id, sizeof key->id) &&
                  strlen (key->id) == BK_KEY_ID_HEX;
            break;
        case K_TEAM:
            team = s_bin (&value, key->team, 16);
            break;
        case K_SCOPE:
            key->scope = value.type == AQ_NODE_INT ? (int) value.i : 0;
            break;
        case K_HASH:
            hash = s_bin (&value, key->hash, 32);
            break;
        case K_CREATED_AT:
            ok &= value.type == AQ_NODE_INT;
            key->created_at = value.i;
            break;
        case K_REVOKED_AT:
            ok &= value.type == AQ_NODE_INT;
            key->revoked_at = value.i;
            break;
        }
    }
    bool scoped = key->scope == BK_SCOPE_FULL || key->scope == BK_SCOPE_READ;
    return ok && versioned && team && hash && scoped && *key->id ? 0 : -1;
}

void bk_key_write_public (const bk_key_t *self, const char *team_name, const char *secret,
                          aq_writer_t *w) {
    bool revoked = self->revoked_at >= 0;
    aq_write_map (w, 6 + revoked + (secret != NULL));
    aq_write_kv_str (w, "id", self->id);
    s_uuid_text (w, "teamId", self->team);
    aq_write_kv_str (w, "team", team_name);
    aq_write_kv_str (w, "scope", self->scope == BK_SCOPE_READ ? "read" : "full");
    s_time (w, "createdAt", self->created_at);
    aq_write_kv_bool (w, "revoked", revoked);
    if (revoked)
        s_time (w, "revokedAt", self->revoked_at);
    if (secret)
        aq_write_kv_str (w, "secret", secret);
}

//  --------------------------------------------------------------------------
//  The store and the caches

//  zhashx keys that are 16-byte ids (a UUIDv7's last 8 bytes are random).
static size_t s_id_hash (const void *key) {
    uint64_t h;
    memcpy (&h, (const uint8_t *) key + 8, sizeof h);
    return (size_t) h;
}

static int s_id_compare (const void *a, const void *b) {
    return memcmp (a, b, 16);
}

static void *s_id_dup (const void *key) {
    void *copy = malloc (16);
    assert (copy);
    return memcpy (copy, key, 16);
}

static void s_free (void **item) {
    free (*item);
    *item = NULL;
}

bk_keys_t *bk_keys_new (bk_store_t *store) {
    assert (store);
    bk_keys_t *self = calloc (1, sizeof *self);
    assert (self);
    self->store = store;
    self->teams = zhashx_new ();
    self->keys = zhashx_new ();
    assert (self->teams && self->keys);
    zhashx_set_key_hasher (self->teams, s_id_hash);
    zhashx_set_key_comparator (self->teams, s_id_compare);
    zhashx_set_key_duplicator (self->teams, s_id_dup);
    zhashx_set_key_destructor (self->teams, s_free);
    zhashx_set_destructor (self->teams, s_free);
    zhashx_set_destructor (self->keys, s_free); //  keys: zhashx's own string keys
    return self;
}

void bk_keys_destroy (bk_keys_t **self_p) {
    assert (self_p);
    bk_keys_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->teams);
        zhashx_destroy (&self->keys);
        free (self);
        *self_p = NULL;
    }
}

void bk_keys_forget (bk_keys_t *self) {
    zhashx_purge (self->teams);
    zhashx_purge (self->keys);
}

//  Keeps a copy of a record in cache (unless it is full); returns the
//  copy, or NULL.
static void *s_cache (zhashx_t *cache, const void *key, const void *record, size_t size) {
    if (zhashx_size (cache) >= S_CACHE_MAX)
        return NULL;
    void *copy = malloc (size);
    assert (copy);
    memcpy (copy, record, size);
    zhashx_update (cache, key, copy);
    return copy;
}

const bk_team_t *bk_keys_team (bk_keys_t *self, const uint8_t id[16]) {
    bk_team_t *team = zhashx_lookup (self->teams, id);
    if (team)
        return team;
    bk_val_t val;
    if (bk_store_get (self->store, BK_DB_TEAMS, id, 16, &val) != 0 ||
        bk_team_decode (val.data, val.size, &self->spare) != 0 ||
        memcmp (self->spare.id, id, 16) != 0)
        return NULL;
    team = s_cache (self->teams, id, &self->spare, sizeof self->spare);
    return team ? team : &self->spare;
}

const char *bk_keys_signing_secret (bk_keys_t *self, const uint8_t team[16]) {
    const bk_team_t *record = bk_keys_team (self, team);
    return record && *record->secret ? record->secret : NULL;
}

bool bk_keys_rate_limit (bk_keys_t *self, const uint8_t team[16], double *rps, double *burst) {
    const bk_team_t *record = bk_keys_team (self, team);
    if (!record || !record->limited)
        return false;
    *rps = record->rps;
    *burst = record->burst;
    return true;
}

int bk_keys_team_find (bk_keys_t *self, const char *name, bk_team_t *team) {
    size_t len = strlen (name);
    if (len == 0 || len > BK_TEAM_NAME_MAX) //  no such team (and no key LMDB takes)
        return BK_NOTFOUND;
    bk_val_t val;
    int rc = bk_store_get (self->store, BK_DB_TEAM_NAMES, name, len, &val);
    if (rc != 0)
        return rc;
    if (val.size != 16)
        return BK_NOTFOUND;
    uint8_t id[16];
    memcpy (id, val.data, 16);
    const bk_team_t *record = bk_keys_team (self, id);
    if (!record)
        return BK_NOTFOUND;
    *team = *record;
    return 0;
}

void bk_keys_new_secret (char secret[BK_SECRET_TEXT]) {
    uint8_t raw[32];
    char b64[sodium_base64_ENCODED_LEN (32, sodium_base64_VARIANT_ORIGINAL)];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2base64 (b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    snprintf (secret, BK_SECRET_TEXT, "whsec_%s", b64);
    sodium_memzero (raw, sizeof raw);
    sodium_memzero (b64, sizeof b64);
}

static int s_team_put (bk_keys_t *self, const bk_team_t *team) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_team_encode (team, &w);
    int rc = bk_store_put_writer (self->store, BK_DB_TEAMS, team->id, 16, &w);
    aq_writer_release (&w);
    return rc;
}

int bk_keys_team_create (bk_keys_t *self, const char *name, int64_t now, bk_team_t *team) {
    size_t len = strlen (name);
    assert (len > 0 && len <= BK_TEAM_NAME_MAX);
    bk_val_t val;
    int rc = bk_store_get (self->store, BK_DB_TEAM_NAMES, name, len, &val);
    if (rc != BK_NOTFOUND)
        return rc == 0 ? BK_KEYS_EXISTS : rc;
    memset (team, 0, sizeof *team);
    aq_uuid_new (team->id);
    memcpy (team->name, name, len + 1);
    team->created_at = now;
    bk_keys_new_secret (team->secret);
    rc = s_team_put (self, team);
    if (rc == 0)
        rc = bk_store_put (self->store, BK_DB_TEAM_NAMES, name, len, team->id, 16);
    return rc;
}

int bk_keys_team_save (bk_keys_t *self, const bk_team_t *team) {
    int rc = s_team_put (self, team);
    if (rc == 0)
        s_cache (self->teams, team->id, team, sizeof *team);
    else
        zhashx_delete (self->teams, team->id);
    return rc;
}

size_t bk_keys_write_teams (bk_keys_t *self, aq_writer_t *w) {
    size_t mark = aq_write_array_open (w), n = 0;
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_TEAMS);
    bk_val_t k, v;
    bk_team_t team;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v))
        if (bk_team_decode (v.data, v.size, &team) == 0) {
            bk_team_write_public (&team, false, w);
            n++;
        }
    bk_cursor_close (&cursor);
    sodium_memzero (team.secret, sizeof team.secret);
    aq_write_array_close (w, mark, (uint32_t) n);
    return n;
}

static void s_hash (const char *text, uint8_t hash[32]) {
    crypto_generichash (hash, 32, (const uint8_t *) text, strlen (text), NULL, 0);
}

static int s_key_put (bk_keys_t *self, const bk_key_t *key) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_key_encode (key, &w);
    int rc = bk_store_put_writer (self->store, BK_DB_KEYS, key->id, BK_KEY_ID_HEX, &w);
    aq_writer_release (&w);
    return rc;
}

int bk_keys_create (bk_keys_t *self, const char *team_name, int scope, int64_t now, bk_key_t *key,
                    char secret[BK_KEY_TEXT]) {
    assert (scope == BK_SCOPE_FULL || scope == BK_SCOPE_READ);
    bk_team_t team;
    int rc = bk_keys_team_find (self, team_name, &team);
    if (rc == BK_NOTFOUND)
        rc = bk_keys_team_create (self, team_name, now, &team);
    sodium_memzero (team.secret, sizeof team.secret);
    if (rc != 0)
        return rc == BK_KEYS_EXISTS ? BK_ESTORE : rc; //  a name index without its team
    uint8_t id[BK_KEY_ID_HEX / 2], raw[32];
    char b64[sodium_base64_ENCODED_LEN (32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf (id, sizeof id);
    randombytes_buf (raw, sizeof raw);
    memset (key, 0, sizeof *key);
    sodium_bin2hex (key->id, sizeof key->id, id, sizeof id);
    sodium_bin2base64 (b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf (secret, BK_KEY_TEXT, "aq_%s_%s", key->id, b64);
    sodium_memzero (raw, sizeof raw);
    sodium_memzero (b64, sizeof b64);
    memcpy (key->team, team.id, 16);
    key->scope = scope;
    s_hash (secret, key->hash);
    key->created_at = now;
    key->revoked_at = -1;
    rc = s_key_put (self, key);
    if (rc != 0)
        sodium_memzero (secret, BK_KEY_TEXT);
    return rc;
}

//  The key record with id (BK_KEY_ID_HEX characters) into *key: 0,
//  BK_NOTFOUND (also for a record that does not decode), or a store error.
static int s_key_load (bk_keys_t *self, const char *id, bk_key_t *key) {
    bk_val_t val;
    int rc = bk_store_get (self->store, BK_DB_KEYS, id, BK_KEY_ID_HEX, &val);
    if (rc == 0 && (bk_key_decode (val.data, val.size, key) != 0 || strcmp (key->id, id) != 0))
        rc = BK_NOTFOUND;
    return rc;
}

int bk_keys_revoke (bk_keys_t *self, const char *id, int64_t now, bk_key_t *key) {
    if (!id || strlen (id) != BK_KEY_ID_HEX)
        return BK_NOTFOUND;
    zhashx_delete (self->keys, id);
    int rc = s_key_load (self, id, key);
    if (rc != 0)
        return rc;
    key->revoked_at = now;
    return s_key_put (self, key);
}

size_t bk_keys_write_keys (bk_keys_t *self, const char *team_name, aq_writer_t *w) {
    size_t mark = aq_write_array_open (w), n = 0;
    bk_team_t team;
    memset (&team, 0, sizeof team);
    if (team_name && bk_keys_team_find (self, team_name, &team) != 0) {
        aq_write_array_close (w, mark, 0);
        return 0;
    }
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_KEYS);
    bk_val_t k, v;
    bk_key_t key;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (bk_key_decode (v.data, v.size, &key) != 0 ||
            (team_name && memcmp (key.team, team.id, 16) != 0))
            continue;
        const bk_team_t *owner = team_name ? &team : bk_keys_team (self, key.team);
        bk_key_write_public (&key, owner ? owner->name : NULL, NULL, w);
        n++;
    }
    bk_cursor_close (&cursor);
    if (team_name)
        sodium_memzero (team.secret, sizeof team.secret);
    aq_write_array_close (w, mark, (uint32_t) n);
    return n;
}

int bk_keys_check (bk_keys_t *self, const char *key, uint8_t team[16], bool *read_only) {
    size_t len = key ? strlen (key) : 0;
    if (len < 4 + BK_KEY_ID_HEX + 1 || len > 120 || strncmp (key, "aq_", 3) != 0 ||
        key[3 + BK_KEY_ID_HEX] != '_')
        return -1;
    char id[BK_KEY_ID_HEX + 1];
    memcpy (id, key + 3, BK_KEY_ID_HEX);
    id[BK_KEY_ID_HEX] = '\0';
    bk_key_t loaded;
    const bk_key_t *record = zhashx_lookup (self->keys, id);
    if (!record) {
        if (s_key_load (self, id, &loaded) != 0)
            return -1;
        record = s_cache (self->keys, id, &loaded, sizeof loaded);
        if (!record)
            record = &loaded;
    }
    uint8_t hash[32];
    s_hash (key, hash);
    if (sodium_memcmp (record->hash, hash, 32) != 0 || record->revoked_at >= 0)
        return -1;
    memcpy (team, record->team, 16);
    *read_only = record->scope == BK_SCOPE_READ;
    return 0;
}

//  --------------------------------------------------------------------------

//  Parses what w holds as one value (asserted) into *node.
static void s_parse (aq_writer_t *w, aq_node_t *node) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    assert (data && aq_msg_parse (data, size, node) == 0);
}

//  The record in w after one key (an int) was given another value.
static int s_team_decode_w (aq_writer_t *w, bk_team_t *team) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    return bk_team_decode (data, size, team);
}

static int s_key_decode_w (aq_writer_t *w, bk_key_t *key) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    return bk_key_decode (data, size, key);
}

static void s_test_records (void) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_team_t team = {.created_at = 1705314600000, .limited = true, .rps = 2.5, .burst = 10};
    aq_uuid_new (team.id);
    snprintf (team.name, sizeof team.name, "%s", "acme");
    bk_keys_new_secret (team.secret);
    assert (strncmp (team.secret, "whsec_", 6) == 0 && strlen (team.secret) == 6 + 44);
    bk_team_encode (&team, &w);
    bk_team_t back;
    assert (s_team_decode_w (&w, &back) == 0);
    assert (memcmp (back.id, team.id, 16) == 0 && strcmp (back.name, "acme") == 0);
    assert (back.created_at == team.created_at && strcmp (back.secret, team.secret) == 0);
    assert (back.limited && back.rps == 2.5 && back.burst == 10);

    //  the public shape: ISO time, the secret only when asked for
    aq_node_t shown, value, inner;
    aq_writer_reset (&w);
    bk_team_write_public (&back, false, &w);
    s_parse (&w, &shown);
    assert (shown.count == 4 && !aq_node_get (&shown, "signingSecret", &value));
    assert (aq_node_get (&shown, "createdAt", &value) &&
            aq_node_streq (&value, "2024-01-15T10:30:00.000Z"));
    assert (aq_node_get (&shown, "name", &value) && aq_node_streq (&value, "acme"));
    assert (aq_node_get (&shown, "rateLimit", &value) && value.count == 2);
    assert (aq_node_get (&value, "rps", &inner) && inner.type == AQ_NODE_FLOAT && inner.f == 2.5);
    aq_writer_reset (&w);
    back.limited = false;
    bk_team_write_public (&back, true, &w);
    s_parse (&w, &shown);
    assert (shown.count == 4 && !aq_node_get (&shown, "rateLimit", &value));
    assert (aq_node_get (&shown, "signingSecret", &value) && aq_node_streq (&value, team.secret));

    //  no limit, no secret: those keys stay out of the record
    back.secret[0] = '\0';
    aq_writer_reset (&w);
    bk_team_encode (&back, &w);
    assert (s_team_decode_w (&w, &team) == 0 && !team.limited && !*team.secret);

    bk_key_t key = {.id = "0123456789abcdef",
                    .scope = BK_SCOPE_READ,
                    .created_at = 1,
                    .revoked_at = 1705314600000};
    aq_uuid_new (key.team);
    memset (key.hash, 0xA5, 32);
    aq_writer_reset (&w);
    bk_key_encode (&key, &w);
    bk_key_t kback;
    assert (s_key_decode_w (&w, &kback) == 0);
    assert (memcmp (&kback, &key, sizeof key) == 0);
    aq_writer_reset (&w);
    bk_key_write_public (&kback, "acme", "aq_secret", &w);
    s_parse (&w, &shown);
    assert (shown.count == 8 && !aq_node_get (&shown, "hash", &value));
    assert (aq_node_get (&shown, "scope", &value) && aq_node_streq (&value, "read"));
    assert (aq_node_get (&shown, "revoked", &value) && value.type == AQ_NODE_BOOL && value.b);
    assert (aq_node_get (&shown, "revokedAt", &value) &&
            aq_node_streq (&value, "2024-01-15T10:30:00.000Z"));
    assert (aq_node_get (&shown, "team", &value) && aq_node_streq (&value, "acme"));
    assert (aq_node_get (&shown, "secret", &value) && aq_node_streq (&value, "aq_secret"));
    kback.revoked_at = -1, kback.scope = BK_SCOPE_FULL;
    aq_writer_reset (&w);
    bk_key_write_public (&kback, NULL, NULL, &w);
    s_parse (&w, &shown);
    assert (shown.count == 6 && !aq_node_get (&shown, "revokedAt", &value));
    assert (aq_node_get (&shown, "team", &value) && aq_node_is_nil (&value));
    assert (aq_node_get (&shown, "scope", &value) && aq_node_streq (&value, "full"));
    assert (aq_node_get (&shown, "revoked", &value) && !value.b);

    //  what decode refuses: another version, a missing or misshapen field, garbage
    struct {
        int version, field;
    } bad[] = {{1, -1}, {BK_TEAM_RECORD, T_ID}, {BK_TEAM_RECORD, T_NAME}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aq_writer_reset (&w);
        aq_write_map (&w, 4 - (bad[i].field >= 0));
        s_kv_int (&w, T_VERSION, bad[i].version);
        if (bad[i].field != T_ID)
            s_kv_bin (&w, T_ID, team.id, 16);
        if (bad[i].field != T_NAME)
            s_kv_str (&w, T_NAME, "acme");
        s_kv_int (&w, T_CREATED_AT, 1);
        assert (s_team_decode_w (&w, &back) == -1);
    }
    aq_writer_reset (&w);
    aq_write_map (&w, 3);
    s_kv_int (&w, T_VERSION, BK_TEAM_RECORD);
    s_kv_bin (&w, T_ID, team.id, 15); //  short id
    s_kv_str (&w, T_NAME, "acme");
    assert (s_team_decode_w (&w, &back) == -1);
    char long_name[BK_TEAM_NAME_MAX + 2];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    aq_writer_reset (&w);
    aq_write_map (&w, 3);
    s_kv_int (&w, T_VERSION, BK_TEAM_RECORD);
    s_kv_bin (&w, T_ID, team.id, 16);
    s_kv_str (&w, T_NAME, long_name);
    assert (s_team_decode_w (&w, &back) == -1);
    aq_writer_reset (&w);
    bk_key_encode (&key, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (bk_key_decode (data, size - 1, &kback) == -1); //  cut short
    assert (bk_team_decode (data, size, &back) == -1);     //  a key is no team
    aq_writer_reset (&w);
    aq_write_map (&w, 6);
    s_kv_int (&w, K_VERSION, BK_KEY_RECORD);
    s_kv_str (&w, K_ID, key.id);
    s_kv_bin (&w, K_TEAM, key.team, 16);
    s_kv_int (&w, K_SCOPE, 3); //  no such scope
    s_kv_bin (&w, K_HASH, key.hash, 32);
    s_kv_int (&w, K_CREATED_AT, 1);
    assert (s_key_decode_w (&w, &kback) == -1);
    assert (bk_key_decode ((const uint8_t *) "\x81\xa2id\x01", 5, &kback) == -1);
    assert (bk_key_decode ((const uint8_t *) "\xc1", 1, &kback) == -1);
    aq_writer_release (&w);
}

void bk_keys_test (bool verbose) {
    s_test_records ();

    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_keys_t *keys = bk_keys_new (store);
    bk_key_t full, read, other;
    char full_text[BK_KEY_TEXT], read_text[BK_KEY_TEXT], other_text[BK_KEY_TEXT];
    assert (bk_keys_create (keys, "acme", BK_SCOPE_FULL, 1, &full, full_text) == 0);
    assert (bk_keys_create (keys, "acme", BK_SCOPE_READ, 2, &read, read_text) == 0);
    assert (bk_keys_create (keys, "globex", BK_SCOPE_FULL, 3, &other, other_text) == 0);
    assert (strncmp (full_text, "aq_", 3) == 0 && strlen (full_text) == 3 + 16 + 1 + 43);
    assert (strncmp (full_text + 3, full.id, 16) == 0 && full.revoked_at == -1);
    assert (memcmp (full.team, read.team, 16) == 0 && memcmp (full.team, other.team, 16) != 0);
    bk_team_t team;
    assert (bk_keys_team_create (keys, "acme", 5, &team) == BK_KEYS_EXISTS);
    assert (bk_keys_team_create (keys, "initech", 5, &team) == 0);
    assert (bk_keys_team_find (keys, "acme", &team) == 0 && memcmp (team.id, full.team, 16) == 0);
    assert (team.created_at == 1 && !team.limited);
    assert (bk_keys_team_find (keys, "nope", &team) == BK_NOTFOUND);
    assert (bk_keys_team_find (keys, "", &team) == BK_NOTFOUND);

    uint8_t id[16], id2[16];
    bool read_only = true;
    assert (bk_keys_check (keys, full_text, id, &read_only) == 0 && !read_only);
    assert (memcmp (id, full.team, 16) == 0);
    assert (bk_keys_check (keys, read_text, id2, &read_only) == 0 && read_only);
    assert (memcmp (id, id2, 16) == 0);
    assert (bk_keys_check (keys, other_text, id2, &read_only) == 0 && memcmp (id, id2, 16) != 0);
    char forged[BK_KEY_TEXT];
    snprintf (forged, sizeof forged, "%s", full_text);
    forged[strlen (forged) - 1] ^= 1;
    assert (bk_keys_check (keys, forged, id, &read_only) == -1);
    forged[3] = forged[3] == 'f' ? 'e' : 'f'; //  another id: unknown
    assert (bk_keys_check (keys, forged, id, &read_only) == -1);
    assert (bk_keys_check (keys, "garbage", id, &read_only) == -1);
    assert (bk_keys_check (keys, "aq_0123456789abcdef-xx", id, &read_only) == -1);
    assert (bk_keys_check (keys, NULL, id, &read_only) == -1);

    //  the cache answers without the store; forgetting it reads again
    bk_key_t garbled = full;
    garbled.scope = 9;
    aq_writer_t w;
    aq_writer_init (&w);
    bk_key_encode (&garbled, &w);
    assert (bk_store_put_writer (store, BK_DB_KEYS, full.id, 16, &w) == 0);
    assert (bk_keys_check (keys, full_text, id, &read_only) == 0);
    bk_keys_forget (keys);
    assert (bk_keys_check (keys, full_text, id, &read_only) == -1); //  refused record
    aq_writer_reset (&w);
    bk_key_encode (&full, &w);
    assert (bk_store_put_writer (store, BK_DB_KEYS, full.id, 16, &w) == 0);
    assert (bk_keys_check (keys, full_text, id, &read_only) == 0);

    //  the signing secret and the rate limit, cached and saved
    const char *secret = bk_keys_signing_secret (keys, full.team);
    assert (secret && strncmp (secret, "whsec_", 6) == 0);
    assert (bk_keys_team_find (keys, "acme", &team) == 0 && strcmp (team.secret, secret) == 0);
    double rps = -1, burst = -1;
    assert (!bk_keys_rate_limit (keys, full.team, &rps, &burst) && rps == -1);
    team.limited = true, team.rps = 2, team.burst = 0;
    bk_keys_new_secret (team.secret);
    assert (bk_keys_team_save (keys, &team) == 0);
    assert (bk_keys_rate_limit (keys, full.team, &rps, &burst) && rps == 2 && burst == 0);
    assert (strcmp (bk_keys_signing_secret (keys, full.team), team.secret) == 0);
    bk_keys_forget (keys);
    assert (bk_keys_rate_limit (keys, full.team, &rps, &burst) && rps == 2);
    assert (strcmp (bk_keys_signing_secret (keys, full.team), team.secret) == 0);
    uint8_t unknown[16];
    aq_uuid_new (unknown);
    assert (!bk_keys_team (keys, unknown) && !bk_keys_signing_secret (keys, unknown));
    assert (!bk_keys_rate_limit (keys, unknown, &rps, &burst));

    //  lists: teams in creation order without secrets; keys without hashes
    aq_node_t list, item, value;
    aq_writer_reset (&w);
    assert (bk_keys_write_teams (keys, &w) == 3);
    s_parse (&w, &list);
    assert (list.type == AQ_NODE_ARRAY && list.count == 3);
    aq_iter_t it;
    aq_node_iter (&list, &it);
    assert (aq_iter_next (&it, NULL, &item) && aq_node_get (&item, "name", &value) &&
            aq_node_streq (&value, "acme"));
    assert (!aq_node_get (&item, "signingSecret", &value));
    assert (aq_node_get (&item, "rateLimit", &value));
    assert (aq_iter_next (&it, NULL, &item) && aq_node_get (&item, "name", &value) &&
            aq_node_streq (&value, "globex"));
    aq_writer_reset (&w);
    assert (bk_keys_write_keys (keys, "acme", &w) == 2);
    s_parse (&w, &list);
    aq_node_iter (&list, &it);
    while (aq_iter_next (&it, NULL, &item)) {
        assert (aq_node_get (&item, "team", &value) && aq_node_streq (&value, "acme"));
        assert (!aq_node_get (&item, "hash", &value) && !aq_node_get (&item, "secret", &value));
    }
    aq_writer_reset (&w);
    assert (bk_keys_write_keys (keys, NULL, &w) == 3);
    aq_writer_reset (&w);
    assert (bk_keys_write_keys (keys, "nope", &w) == 0);
    s_parse (&w, &list);
    assert (list.type == AQ_NODE_ARRAY && list.count == 0);

    //  revoking: the cached key stops working at once
    assert (bk_keys_check (keys, read_text, id, &read_only) == 0);
    bk_key_t revoked;
    assert (bk_keys_revoke (keys, read.id, 9, &revoked) == 0 && revoked.revoked_at == 9);
    assert (bk_keys_check (keys, read_text, id, &read_only) == -1);
    assert (bk_keys_revoke (keys, "0000000000000000", 9, &revoked) == BK_NOTFOUND);
    assert (bk_keys_revoke (keys, "short", 9, &revoked) == BK_NOTFOUND);
    assert (bk_keys_revoke (keys, NULL, 9, &revoked) == BK_NOTFOUND);

    //  a garbled record is skipped by the lists and unknown to the checks
    assert (bk_store_put (store, BK_DB_KEYS, other.id, 16, "\xc1", 1) == 0);
    assert (bk_store_put (store, BK_DB_TEAMS, unknown, 16, "\x80", 1) == 0);
    bk_keys_forget (keys);
    assert (bk_keys_check (keys, other_text, id, &read_only) == -1);
    aq_writer_reset (&w);
    assert (bk_keys_write_keys (keys, NULL, &w) == 2);
    aq_writer_reset (&w);
    assert (bk_keys_write_teams (keys, &w) == 3);
    assert (!bk_keys_team (keys, unknown));

    aq_writer_release (&w);
    sodium_memzero (full_text, sizeof full_text);
    bk_keys_destroy (&keys);
    assert (!keys);
    bk_keys_destroy (&keys);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_keys: ok\n");
}
