/*  signing.c - Standard Webhooks signatures for outgoing calls */
#include "signing.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int bk_signing_sign (const char *whsec, const char *msg_id, int64_t timestamp, const char *body,
                     size_t body_size, char out[BK_SIGNING_SIZE]) {
    if (!whsec || strncmp (whsec, "whsec_", 6) != 0)
        return -1;
    uint8_t key[64];
    size_t key_size = 0;
    const char *b64 = whsec + 6;
    if (sodium_base642bin (key, sizeof key, b64, strlen (b64), NULL, &key_size, NULL,
                           sodium_base64_VARIANT_ORIGINAL) != 0 ||
        key_size == 0)
        return -1;
    char prefix[128];
    int n = snprintf (prefix, sizeof prefix, "%s.%lld.", msg_id, (long long) timestamp);
    if (n < 0 || n >= (int) sizeof prefix)
        return -1;
    crypto_auth_hmacsha256_state state;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init (&state, key, key_size);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) prefix, (size_t) n);
    if (body)
        crypto_auth_hmacsha256_update (&state, (const uint8_t *) body, body_size);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_memzero (key, sizeof key);
    memcpy (out, "v1,", 3);
    sodium_bin2base64 (out + 3, BK_SIGNING_SIZE - 3, mac, sizeof mac,
                       sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

void bk_signing_test (bool verbose) {
    //  The Standard Webhooks specification's published example
    char sig[BK_SIGNING_SIZE];
    const char *body = "{\"test\": 2432232314}";
    assert (bk_signing_sign ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen (body),
                             sig) == 0);
    assert (strcmp (sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == 0);
    assert (bk_signing_sign ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen (body),
                             sig) == 0);
    assert (strcmp (sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);
    assert (bk_signing_sign ("nope", "m", 1, NULL, 0, sig) == -1);
    assert (bk_signing_sign ("whsec_!!!", "m", 1, NULL, 0, sig) == -1);
    if (verbose)
        printf ("bk_signing: ok\n");
}
