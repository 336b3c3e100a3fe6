/*  vault_sodium.c - the default token vault: libsodium XChaCha20-Poly1305

    A sealed value is: version (1 byte, 1) | nonce (24 random bytes) |
    ciphertext with its 16-byte tag. The associated data is the team id, a
    NUL, then the token id: a value opens only for the team and token id it
    was sealed for. The 32-byte master key comes from $AQ_VAULT_KEY (64 hex
    characters) or else from <data dir>/vault.key (64 hex characters, mode
    0600, created on first open). Changing the sealed layout: bump S_VERSION
    and keep opening the old one.

    Never logs or returns a value, except the value open () returns.
*/
#include "aq_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_VERSION   1
#define S_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define S_NONCE     crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define S_TAG       crypto_aead_xchacha20poly1305_ietf_ABYTES
#define S_OVERHEAD  (1 + S_NONCE + S_TAG)
#define S_AD_MAX    512 //  team id + NUL + token id

typedef struct {
    const aq_host_t *host;    //  the host's services
    uint8_t key[S_KEY_BYTES]; //  the master key (sodium_malloc'd, no core dumps)
} s_vault_t;

//  Decodes 64 hex characters (trailing whitespace allowed) into key. 0 or -1.
static int s_key_from_hex (const char *hex, size_t len, uint8_t key[S_KEY_BYTES]) {
    while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' '))
        len--;
    size_t bin_len = 0;
    if (len != 2 * S_KEY_BYTES ||
        sodium_hex2bin (key, S_KEY_BYTES, hex, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != S_KEY_BYTES)
        return -1;
    return 0;
}

//  Reads the key file at path. 0, -1 (logged), or 1 if it does not exist.
static int s_read_key (const aq_host_t *host, const char *path, uint8_t key[S_KEY_BYTES]) {
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot open vault key file '%s': %s", path,
                   strerror (errno));
        return -1;
    }
    int rc = -1;
    char hex[2 * S_KEY_BYTES + 8];
    struct stat st;
    ssize_t len = 0;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
        host->log (AQ_PLUGIN_LOG_ERROR, "vault key file '%s' is not a regular file", path);
    else if (st.st_mode & 077)
        host->log (AQ_PLUGIN_LOG_ERROR,
                   "vault key file '%s' must not be readable by others (mode %04o, needs 0600)",
                   path, (unsigned) (st.st_mode & 07777));
    else if ((len = read (fd, hex, sizeof hex)) < 0)
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot read vault key file '%s': %s", path,
                   strerror (errno));
    else if (s_key_from_hex (hex, (size_t) len, key) != 0)
        host->log (AQ_PLUGIN_LOG_ERROR, "vault key file '%s' does not hold 64 hex characters",
                   path);
    else
        rc = 0;
    sodium_memzero (hex, sizeof hex);
    close (fd);
    return rc;
}

//  Creates the key file at path with a new random key, atomically: written
//  to a temporary file, then linked in place (so a racing creator wins and
//  we read its key). 0, -1 (logged), or 1 if the file appeared meanwhile.
static int s_create_key (const aq_host_t *host, const char *path, uint8_t key[S_KEY_BYTES]) {
    char tmp[4096], hex[2 * S_KEY_BYTES + 2];
    if (snprintf (tmp, sizeof tmp, "%s.%d.tmp", path, (int) getpid ()) >= (int) sizeof tmp)
        return -1;
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot create vault key file '%s': %s", path,
                   strerror (errno));
        return -1;
    }
    randombytes_buf (key, S_KEY_BYTES);
    sodium_bin2hex (hex, sizeof hex, key, S_KEY_BYTES);
    hex[2 * S_KEY_BYTES] = '\n';
    size_t len = 2 * S_KEY_BYTES + 1;
    int rc = -1;
    if (fchmod (fd, 0600) != 0 || write (fd, hex, len) != (ssize_t) len || fsync (fd) != 0)
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot write vault key file '%s': %s", path,
                   strerror (errno));
    else if (link (tmp, path) == 0)
        rc = 0;
    else if (errno == EEXIST)
        rc = 1;
    else
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot create vault key file '%s': %s", path,
                   strerror (errno));
    sodium_memzero (hex, sizeof hex);
    close (fd);
    unlink (tmp);
    if (rc == 0) {
        //  make the new name durable before any value is sealed under it
        char dir[4096];
        snprintf (dir, sizeof dir, "%s", path);
        char *slash = strrchr (dir, '/');
        if (slash)
            *slash = 0;
        int dir_fd = open (slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync (dir_fd);
            close (dir_fd);
        }
        host->log (AQ_PLUGIN_LOG_INFO, "created vault key file '%s'", path);
    }
    return rc;
}

static void s_close (void **state_p) {
    s_vault_t *self = *state_p;
    if (self) {
        sodium_free (self); //  wipes it
        *state_p = NULL;
    }
}

static void *s_open (const aq_host_t *host, const char *config) {
    if (sodium_init () < 0) {
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot initialise libsodium");
        return NULL;
    }
    s_vault_t *self = sodium_malloc (sizeof *self);
    if (!self) {
        host->log (AQ_PLUGIN_LOG_ERROR, "cannot allocate the vault key");
        return NULL;
    }
    self->host = host;
    const char *env = getenv ("AQ_VAULT_KEY");
    int rc = -1;
    if (env && *env) {
        rc = s_key_from_hex (env, strlen (env), self->key);
        if (rc != 0)
            host->log (AQ_PLUGIN_LOG_ERROR, "AQ_VAULT_KEY must be 64 hex characters");
    } else if (!config || !*config)
        host->log (AQ_PLUGIN_LOG_ERROR, "no vault key: set AQ_VAULT_KEY or give a data directory");
    else {
        char path[4096];
        if (snprintf (path, sizeof path, "%s/vault.key", config) >= (int) sizeof path)
            host->log (AQ_PLUGIN_LOG_ERROR, "data directory path is too long");
        else {
            rc = s_read_key (host, path, self->key);
            if (rc == 1)
                rc = s_create_key (host, path, self->key);
            if (rc == 1)
                rc = s_read_key (host, path, self->key);
        }
    }
    if (rc != 0) {
        s_close ((void **) &self);
        return NULL;
    }
    return self;
}

//  Builds the associated data team NUL token_id. Its length, or 0 if too long.
static size_t s_ad (const char *team, const char *token_id, uint8_t ad[S_AD_MAX]) {
    size_t team_len = strlen (team), token_len = strlen (token_id);
    if (team_len + 1 + token_len > S_AD_MAX)
        return 0;
    memcpy (ad, team, team_len);
    ad[team_len] = 0;
    memcpy (ad + team_len + 1, token_id, token_len);
    return team_len + 1 + token_len;
}

static int s_seal (void *state, const char *team, const char *token_id, const uint8_t *value,
                   size_t len, uint8_t **out, size_t *out_len) {
    s_vault_t *self = state;
    uint8_t ad[S_AD_MAX];
    size_t ad_len = s_ad (team, token_id, ad);
    if (ad_len == 0 || len > SIZE_MAX - S_OVERHEAD)
        return -1;
    uint8_t *sealed = self->host->alloc (len + S_OVERHEAD);
    if (!sealed)
        return -1;
    sealed[0] = S_VERSION;
    randombytes_buf (sealed + 1, S_NONCE);
    unsigned long long cipher_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt (sealed + 1 + S_NONCE, &cipher_len, value, len, ad,
                                                ad_len, NULL, sealed + 1, self->key);
    *out = sealed;
    *out_len = 1 + S_NONCE + (size_t) cipher_len;
    return 0;
}

static int s_open_value (void *state, const char *team, const char *token_id, const uint8_t *sealed,
                         size_t len, uint8_t **out, size_t *out_len) {
    s_vault_t *self = state;
    uint8_t ad[S_AD_MAX];
    size_t ad_len = s_ad (team, token_id, ad);
    if (ad_len == 0 || len < S_OVERHEAD || sealed[0] != S_VERSION)
        return -1;
    size_t plain_max = len - S_OVERHEAD;
    uint8_t *plain = self->host->alloc (plain_max + 1);
    if (!plain)
        return -1;
    unsigned long long plain_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt (plain, &plain_len, NULL, sealed + 1 + S_NONCE,
                                                    len - 1 - S_NONCE, ad, ad_len, sealed + 1,
                                                    self->key) != 0) {
        sodium_memzero (plain, plain_max + 1);
        self->host->free (plain);
        return -1;
    }
    plain[plain_len] = 0;
    *out = plain;
    *out_len = (size_t) plain_len;
    return 0;
}

static const aq_vault_ops_t s_ops = {
    .abi = AQ_VAULT_ABI,
    .size = sizeof (aq_vault_ops_t),
    .seal = s_seal,
    .open = s_open_value,
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "vault-sodium",
    .version = "1.0.0",
    .kind = AQ_PLUGIN_VAULT,
    .open = s_open,
    .close = s_close,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
