/*  signing.h - Standard Webhooks signatures for outgoing calls

    webhook-signature = "v1," base64(HMAC-SHA256(secret, id "." timestamp "." body))
    where secret is the base64 part of the team's "whsec_..." signing secret.
*/
#ifndef BK_SIGNING_H
#define BK_SIGNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_SIGNING_SIZE 64 //  "v1," + 44 base64 characters + NUL fits

//  Writes the signature into out. 0, or -1 if the secret is malformed.
int bk_signing_sign (const char *whsec, const char *msg_id, int64_t timestamp, const char *body,
                     size_t body_size, char out[BK_SIGNING_SIZE]);

void bk_signing_test (bool verbose);

#endif
