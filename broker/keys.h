/*  keys.h - teams and API keys: typed records in the store, and their caches

    A team has a name, a signing secret for the calls made for it and,
    optionally, a rate limit of its own. An API key reads
    "aq_<16 hex id>_<43 characters of base64url secret>" (256 random
    bits); only a BLAKE2b hash of it is stored, and checks compare hashes
    in constant time. Teams and keys are never deleted (a key is revoked).

    Store records (bk_team_encode, bk_key_encode): msgpack maps with small
    integer keys (keys.c lists them), key 0 the record version. An added
    optional key is compatible; reshaping one is not (bump the version and
    teach the decoder the old shape). Layout version 1 stored these as JSON
    documents packed as msgpack; upgrade.c turns those into these records.

    bk_keys_t keeps the store's teams and keys by id in memory (only the
    broker writes them), so checking a key and signing a call read no
    store in the common case. Every call that may read the store runs
    inside the caller's store transaction (a write one for the calls that
    change something).
*/
#ifndef BK_KEYS_H
#define BK_KEYS_H

#include "aq_msg.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_TEAM_RECORD   2   //  the team record's own version (layout 1 was JSON)
#define BK_KEY_RECORD    2   //  the key record's own version (layout 1 was JSON)
#define BK_TEAM_NAME_MAX 200 //  bytes of a team name
#define BK_SECRET_TEXT   64  //  "whsec_" and base64 of 32 bytes, NUL included
#define BK_KEY_ID_HEX    16  //  hex digits of a key id (the key's store key)
#define BK_KEY_TEXT      64  //  an API key, NUL included

//  The key's scope.
typedef enum { BK_SCOPE_FULL = 1, BK_SCOPE_READ } bk_scope_t;

//  Returned by bk_keys_team_create when the name is taken.
#define BK_KEYS_EXISTS 2

typedef struct {
    uint8_t id[16];                  //  UUIDv7, the store key
    char name[BK_TEAM_NAME_MAX + 1]; //  1 to 200 bytes, unique
    int64_t created_at;              //  ms
    char secret[BK_SECRET_TEXT];     //  "whsec_..." signs outgoing calls, "" none
    bool limited;                    //  has a rate limit of its own (below)
    double rps;                      //  requests per second refilled, 0 unlimited
    double burst;                    //  bucket size, below 1: the default (limits.h)
} bk_team_t;

typedef struct {
    char id[BK_KEY_ID_HEX + 1]; //  16 hex digits, the store key
    uint8_t team[16];           //  the team it acts for
    int scope;                  //  bk_scope_t
    uint8_t hash[32];           //  BLAKE2b-256 of the whole key text
    int64_t created_at;         //  ms
    int64_t revoked_at;         //  ms, -1 while valid
} bk_key_t;

//  ---- the records ----------------------------------------------------------

//  The store record, appended to w.
void bk_team_encode (const bk_team_t *self, aq_writer_t *w);
//  A team from its store record into *team: 0, or -1 when the bytes are
//  not a team record of a version this build reads.
int bk_team_decode (const uint8_t *data, size_t size, bk_team_t *team);
//  The public shape, appended to w as a map: {id, name, createdAt (ISO
//  8601), signingSecret (only with with_secret), rateLimit {rps, burst}
//  (only when limited)}.
void bk_team_write_public (const bk_team_t *self, bool with_secret, aq_writer_t *w);

void bk_key_encode (const bk_key_t *self, aq_writer_t *w);
int bk_key_decode (const uint8_t *data, size_t size, bk_key_t *key);
//  The public shape: {id, teamId, team (team_name, nil when NULL), scope,
//  createdAt, revoked, revokedAt (once revoked), secret (when not NULL:
//  the key itself, shown once at creation)}. Never the hash.
void bk_key_write_public (const bk_key_t *self, const char *team_name, const char *secret,
                          aq_writer_t *w);

//  ---- the store and the caches -------------------------------------------

typedef struct _bk_keys_t bk_keys_t;

//  Teams and keys of store (borrowed; it outlives the object).
bk_keys_t *bk_keys_new (bk_store_t *store);
void bk_keys_destroy (bk_keys_t **self_p);
//  Empties the caches. Call it after a failed commit: a cache may hold
//  what the lost transaction wrote.
void bk_keys_forget (bk_keys_t *self);

//  The team with id, or NULL if there is none (or its record does not
//  decode). Borrowed: valid until the next call on self.
const bk_team_t *bk_keys_team (bk_keys_t *self, const uint8_t id[16]);
//  The team's signing secret ("whsec_..."), or NULL when the team is
//  unknown or has none. Borrowed: valid until the next call on self.
const char *bk_keys_signing_secret (bk_keys_t *self, const uint8_t team[16]);
//  The team's own rate limit: true with *rps and *burst set, false when
//  it has none (the server's default applies) or is unknown.
bool bk_keys_rate_limit (bk_keys_t *self, const uint8_t team[16], double *rps, double *burst);

//  The team called name into *team (a copy to change and save): 0,
//  BK_NOTFOUND, or a store error.
int bk_keys_team_find (bk_keys_t *self, const char *name, bk_team_t *team);
//  Creates a team called name (1 to BK_TEAM_NAME_MAX bytes: the caller
//  checks) with a new signing secret, into *team: 0, BK_KEYS_EXISTS when
//  the name is taken, or a store error.
int bk_keys_team_create (bk_keys_t *self, const char *name, int64_t now, bk_team_t *team);
//  Stores a changed team (its name unchanged) and caches it: 0 or a store
//  error.
int bk_keys_team_save (bk_keys_t *self, const bk_team_t *team);
//  Writes a new "whsec_..." signing secret into secret.
void bk_keys_new_secret (char secret[BK_SECRET_TEXT]);
//  Appends every team's public shape (no signing secret), in creation
//  order, to w as an array. Returns how many.
size_t bk_keys_write_teams (bk_keys_t *self, aq_writer_t *w);

//  Creates a key with scope (bk_scope_t) for the team called team_name,
//  creating the team if needed (the caller checks the name as for
//  bk_keys_team_create). Fills *key and secret, the key's text, which is
//  stored nowhere: show it once, then wipe it. 0 or a store error.
int bk_keys_create (bk_keys_t *self, const char *team_name, int scope, int64_t now, bk_key_t *key,
                    char secret[BK_KEY_TEXT]);
//  Revokes the key with id (a key revoked again gets the new time) and
//  drops it from the cache; fills *key. 0, BK_NOTFOUND, or a store error.
int bk_keys_revoke (bk_keys_t *self, const char *id, int64_t now, bk_key_t *key);
//  Appends the public shape of the keys (without secrets) of the team
//  called team_name, or of all teams when it is NULL, to w as an array in
//  key id order. Returns how many.
size_t bk_keys_write_keys (bk_keys_t *self, const char *team_name, aq_writer_t *w);

//  Checks an API key. Returns 0 and fills team and *read_only, or -1 when
//  the key is malformed, unknown or revoked.
int bk_keys_check (bk_keys_t *self, const char *key, uint8_t team[16], bool *read_only);

void bk_keys_test (bool verbose);

#endif
