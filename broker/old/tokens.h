/*  tokens.h - the token vault's records: secrets sealed by a vault plugin

    A token is {id "tok_<32 hex>", name, createdAt} plus its value, sealed
    by the vault plugin with the team id and token id as associated data;
    only the sealed bytes reach the store. A header value that is exactly a
    token id is replaced by the value when the call is made. Calls run
    inside the caller's store transaction.
*/
#ifndef BK_TOKENS_H
#define BK_TOKENS_H

#include "loader.h"
#include "store.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BK_TOKENS_MAX_VALUE 8192 //  bytes of a token's value

//  True when text has the shape of a token id ("tok_" and 32 hex digits).
bool bk_tokens_is_id (const char *text);

//  Validates a POST /v1/tokens body {name, value}, seals the value and
//  stores the token. Returns the public record (new reference), or NULL
//  with *error set to the client message (400), or to NULL after a vault
//  or store failure.
json_t *bk_tokens_create (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                          const json_t *request, int64_t now, const char **error, char *errbuf,
                          size_t errbuf_size);
//  The team's tokens, public records (never values). New reference.
json_t *bk_tokens_list (bk_store_t *store, const uint8_t team[16]);
//  Deletes a token; returns its public record, or NULL if it is unknown.
json_t *bk_tokens_delete (bk_store_t *store, const uint8_t team[16], const char *id);
bool bk_tokens_exists (bk_store_t *store, const uint8_t team[16], const char *id);
//  Opens a token's value into *value (*size bytes, NUL-terminated; free
//  with aq_plugin_secret_free). 0, or -1 if it is unknown or does not open.
int bk_tokens_open (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                    const char *id, char **value, size_t *size);

//  Checks every header value of a task's headers object that is a token
//  id: NULL when all exist, else the client message ("Unknown token: ...",
//  written into errbuf).
const char *bk_tokens_check_headers (bk_store_t *store, const uint8_t team[16],
                                     const json_t *headers, char *errbuf, size_t errbuf_size);

void bk_tokens_test (bool verbose);

#endif
