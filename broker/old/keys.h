/*  keys.h - teams and API keys, kept in the store

    An API key reads "aq_<16 hex id>_<43 characters of base64url secret>"
    (256 random bits). Only a BLAKE2b hash of it is stored; checks compare
    hashes in constant time. All functions run inside the caller's store
    transaction (a write one for the mutating calls).
*/
#ifndef BK_KEYS_H
#define BK_KEYS_H

#include "store.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

//  Team record {id, name, createdAt, signingSecret} by name, or NULL.
//  Returns a new reference.
json_t *bk_keys_team_find (bk_store_t *store, const char *name);
//  Team record by raw id, or NULL. New reference.
json_t *bk_keys_team_get (bk_store_t *store, const uint8_t team[16]);
//  Creates a team; NULL if the name is taken or invalid. New reference.
json_t *bk_keys_team_create (bk_store_t *store, const char *name, int64_t now);
//  Stores a changed team record. 0 or a store error.
int bk_keys_team_save (bk_store_t *store, const json_t *team);
//  A new "whsec_..." signing secret (caller frees).
char *bk_keys_new_secret (void);
//  All teams, public shape (no signing secret). New reference.
json_t *bk_keys_team_list (bk_store_t *store);

//  Creates a key for the team named team_name (creating the team if
//  needed) with scope "full" or "read". Returns the public key object with
//  `secret`, the only time it is ever shown; NULL on a store failure.
json_t *bk_keys_create (bk_store_t *store, const char *team_name, const char *scope, int64_t now);
//  Keys (without secrets), of one team when team_name is not NULL.
json_t *bk_keys_list (bk_store_t *store, const char *team_name);
//  Revokes a key by id; returns its public object or NULL if unknown.
json_t *bk_keys_revoke (bk_store_t *store, json_t *cache, const char *id, int64_t now);

//  Checks an API key. Returns 0 and fills team and *read_only, or -1 when
//  the key is malformed, unknown or revoked. cache (a JSON object, or NULL)
//  keeps key records by id across calls; bk_keys_revoke evicts from it.
int bk_keys_check (bk_store_t *store, json_t *cache, const char *key, uint8_t team[16],
                   bool *read_only);

void bk_keys_test (bool verbose);

#endif
