/*  tokens.h - the token vault's records: secrets sealed by a vault plugin

    A token is an id "tok_<32 hex>", a name and a creation time, plus its
    value sealed by the vault plugin with the team id and token id as
    associated data; only the sealed bytes reach the store. A header value
    that is exactly a token id is replaced by the value when the call is
    made. Calls run inside the caller's store transaction (a write one for
    create and delete).

    Store record (BK_DB_TOKENS: team(16) token id -> record): a msgpack map
    with small integer keys (tokens.c lists them), key 0 the record version
    BK_TOKEN_RECORD. Layout version 1 stored {id, name, createdAt, sealed
    (base64 text)} packed as msgpack; upgrade.c turns those into this
    record.
*/
#ifndef BK_TOKENS_H
#define BK_TOKENS_H

#include "aq_msg.h"
#include "loader.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_TOKEN_RECORD     2    //  the record's own version (layout 1 was JSON)
#define BK_TOKENS_MAX_VALUE 8192 //  bytes of a token's value
#define BK_TOKEN_ID_SIZE    36   //  "tok_" and 32 hex digits
#define BK_TOKEN_NAME_MAX   200  //  bytes of a token's name

typedef struct {
    char id[BK_TOKEN_ID_SIZE + 1];    //  "tok_..."
    char name[BK_TOKEN_NAME_MAX + 1]; //  1 to 200 bytes
    int64_t created_at;               //  ms
    const uint8_t *sealed;            //  the sealed value, borrowed (see below), or NULL
    size_t sealed_size;               //  its length
} bk_token_t;

//  The store record, appended to w.
void bk_token_encode (const bk_token_t *self, aq_writer_t *w);
//  A token from its store record into *token: 0, or -1 when the bytes are
//  not a token record of a version this build reads. token->sealed
//  borrows data.
int bk_token_decode (const uint8_t *data, size_t size, bk_token_t *token);
//  The public shape, appended to w as a map: {id, name, createdAt (ISO
//  8601)}. Never the value, sealed or not.
void bk_token_write_public (const bk_token_t *self, aq_writer_t *w);

//  True when text has the shape of a token id ("tok_" and 32 lower-case
//  hex digits).
bool bk_tokens_is_id (const char *text);

//  Validates a POST /v1/tokens body {name, value} (request NULL: none
//  given), seals the value and stores the token into *token (sealed
//  NULL). 0, or -1 with *error set to the client message (400: static or
//  in errbuf), or to NULL after a vault or store failure (vault NULL is
//  such a failure).
int bk_tokens_create (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                      const aq_node_t *request, int64_t now, bk_token_t *token, const char **error,
                      char *errbuf, size_t errbuf_size);
//  Appends the public shape of the team's tokens to w as an array, in id
//  order. Returns how many.
size_t bk_tokens_write_list (bk_store_t *store, const uint8_t team[16], aq_writer_t *w);
//  Deletes the team's token with id into *token (sealed NULL): 0,
//  BK_NOTFOUND (also for a malformed id or another team's token), or a
//  store error.
int bk_tokens_delete (bk_store_t *store, const uint8_t team[16], const char *id, bk_token_t *token);
bool bk_tokens_exists (bk_store_t *store, const uint8_t team[16], const char *id);
//  Opens a token's value into *value (*size bytes, NUL-terminated; free
//  with aq_plugin_secret_free). 0, or -1 if it is unknown, its record does
//  not decode or it does not open (vault NULL: -1).
int bk_tokens_open (bk_store_t *store, const aq_plugin_vault_t *vault, const uint8_t team[16],
                    const char *id, char **value, size_t *size);

//  Checks every value of a task's headers map that starts with "tok_" is
//  a token of the team: NULL when all are (or headers is not a map), else
//  the client message "Unknown token: <value>" written into errbuf.
const char *bk_tokens_check_headers (bk_store_t *store, const uint8_t team[16],
                                     const aq_node_t *headers, char *errbuf, size_t errbuf_size);

void bk_tokens_test (bool verbose);

#endif
