/*  admin.h - client commands about teams, API keys and vault tokens

    TEAM_CREATE, TEAM_LIST, KEY_CREATE, KEY_LIST, KEY_REVOKE, TEAM_SECRET
    and TEAM_LIMIT come with the admin token; TOKEN_CREATE, TOKEN_LIST and
    TOKEN_DELETE with a team's API key (TOKEN_LIST: any scope, the others
    full). handlers.c checks those credentials; the functions here answer
    an authenticated request. The answers are the REST bodies of
    docs/protocol.md 6.11 and 6.13: the public shapes of keys.h and
    tokens.h, written as msgpack maps for the gateway to render.
*/
#ifndef BK_ADMIN_H
#define BK_ADMIN_H

#include "keys.h"
#include "loader.h"
#include "request.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

//  True for the ten commands bk_admin_command answers.
bool bk_admin_handles (int cmd);

//  Answers cmd (one bk_admin_handles accepts) exactly once through req,
//  inside the turn's write transaction on store; keys holds the same
//  store's teams and keys. For the token commands req->team is the
//  caller's team; vault NULL answers them 503 "Token vault unavailable".
//  A store failure answers 503 BK_REPLY_FAILED (the turn's commit then
//  fails or writes what succeeded, as for any handler).
void bk_admin_command (bk_store_t *store, bk_keys_t *keys, const aq_plugin_vault_t *vault,
                       bk_req_t *req, int cmd, int64_t now);

void bk_admin_test (bool verbose);

#endif
