/*  vault_sodium_test.c - selftest of the vault-sodium plugin: sealing and
    opening through the loader, its key file and AQ_VAULT_KEY, the refusals
    that leave the host without a vault, and never a secret in a log line
*/
#include "../../tests/rig_plugin.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Seals a value, checks it opens only as sealed, returns the sealed copy.
static uint8_t *s_test_vault (const aq_plugin_vault_t *vault, const char *secret, size_t *size) {
    size_t len = strlen (secret);
    uint8_t *sealed = NULL, *other = NULL;
    size_t sealed_len = 0, other_len = 0;
    assert (aq_plugin_vault_seal (vault, "team-a", "tok_1", secret, len, &sealed, &sealed_len) ==
            0);
    assert (sealed_len == len + 41);
    assert (!memmem (sealed, sealed_len, secret, len));
    assert (aq_plugin_vault_seal (vault, "team-a", "tok_1", secret, len, &other, &other_len) == 0);
    assert (other_len == sealed_len && memcmp (sealed, other, sealed_len) != 0); //  fresh nonce
    free (other);

    char *value = NULL;
    size_t value_len = 0;
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", sealed, sealed_len, &value,
                                  &value_len) == 0);
    assert (value_len == len && memcmp (value, secret, len) == 0 && value[len] == 0);
    aq_plugin_secret_free (&value, value_len);
    assert (value == NULL);
    aq_plugin_secret_free (&value, 0);
    //  Another team, another token id, any changed byte, a cut: nothing opens
    assert (aq_plugin_vault_open (vault, "team-b", "tok_1", sealed, sealed_len, &value,
                                  &value_len) == -1);
    assert (aq_plugin_vault_open (vault, "team-a", "tok_2", sealed, sealed_len, &value,
                                  &value_len) == -1);
    assert (aq_plugin_vault_open (vault, "team-atok_1", "", sealed, sealed_len, &value,
                                  &value_len) == -1);
    uint8_t *copy = malloc (sealed_len);
    assert (copy);
    for (size_t at = 0; at < sealed_len; at++) {
        memcpy (copy, sealed, sealed_len);
        copy[at] ^= 0x01;
        assert (aq_plugin_vault_open (vault, "team-a", "tok_1", copy, sealed_len, &value,
                                      &value_len) == -1);
    }
    free (copy);
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", sealed, sealed_len - 1, &value,
                                  &value_len) == -1);
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", sealed, 0, &value, &value_len) == -1);
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", NULL, 0, &value, &value_len) == -1);
    assert (value == NULL);
    //  An empty value seals and opens too
    assert (aq_plugin_vault_seal (vault, "t", "tok_e", "", 0, &other, &other_len) == 0);
    assert (aq_plugin_vault_open (vault, "t", "tok_e", other, other_len, &value, &value_len) == 0);
    assert (value_len == 0 && value[0] == 0);
    aq_plugin_secret_free (&value, value_len);
    free (other);
    *size = sealed_len;
    return sealed;
}

//  A loader over config with dir loaded; how many loaded in *loaded.
static aq_plugin_loader_t *s_loader (const char *config, const char *dir, int *loaded) {
    aq_plugin_loader_t *loader = aq_plugin_loader_new (config);
    assert (loader);
    *loaded = aq_plugin_loader_load_dir (loader, dir);
    return loader;
}

void aq_plugin_vault_sodium_test (bool verbose) {
    char *dir = rig_plugin_dir ("aq_plugin_vault_sodium");
    if (!dir)
        return;
    char data[] = "/tmp/aq-vault-test-XXXXXX";
    assert (mkdtemp (data));
    char log[128], key_file[128];
    snprintf (log, sizeof log, "%s/log", data);
    snprintf (key_file, sizeof key_file, "%s/vault.key", data);
    unsetenv ("AQ_VAULT_KEY");
    int saved = rig_plugin_capture_begin (log);

    //  It opens with the shipped plugins; the key file appears, 0600
    int loaded = 0;
    aq_plugin_loader_t *loader = s_loader (data, dir, &loaded);
    assert (loaded == 4);
    const aq_plugin_vault_t *vault = aq_plugin_loader_vault (loader, NULL);
    assert (vault && RIG_STREQ (aq_plugin_vault_name (vault), "vault-sodium"));
    struct stat st;
    assert (stat (key_file, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 65);
    char key_hex[80] = "";
    FILE *file = fopen (key_file, "r");
    assert (file && fgets (key_hex, sizeof key_hex, file));
    fclose (file);
    key_hex[64] = 0;

    //  The vault; its key survives a restart
    const char *secret = "sk-live-0123456789abcdef";
    size_t sealed_len = 0;
    uint8_t *sealed = s_test_vault (vault, secret, &sealed_len);
    aq_plugin_loader_destroy (&loader);
    loader = s_loader (data, dir, &loaded);
    vault = aq_plugin_loader_vault (loader, NULL);
    char *value = NULL;
    size_t value_len = 0;
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", sealed, sealed_len, &value,
                                  &value_len) == 0);
    assert (value_len == strlen (secret) && memcmp (value, secret, value_len) == 0);
    aq_plugin_secret_free (&value, value_len);
    aq_plugin_loader_destroy (&loader);

    //  A key from the environment wins; values sealed under the file's key stay shut
    setenv ("AQ_VAULT_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    loader = s_loader (data, dir, &loaded);
    vault = aq_plugin_loader_vault (loader, NULL);
    assert (loaded == 4 && vault);
    assert (aq_plugin_vault_open (vault, "team-a", "tok_1", sealed, sealed_len, &value,
                                  &value_len) == -1);
    free (s_test_vault (vault, secret, &sealed_len));
    aq_plugin_loader_destroy (&loader);

    //  A malformed key, a readable key file, no key at all: no vault, the
    //  providers still load, and the process goes on
    setenv ("AQ_VAULT_KEY", "deadbeefcafe", 1);
    loader = s_loader (data, dir, &loaded);
    assert (loaded == 3 && aq_plugin_loader_vault (loader, NULL) == NULL);
    assert (aq_plugin_loader_provider (loader, "fal"));
    aq_plugin_loader_destroy (&loader);
    unsetenv ("AQ_VAULT_KEY");
    assert (chmod (key_file, 0644) == 0);
    loader = s_loader (data, dir, &loaded);
    assert (loaded == 3 && aq_plugin_loader_vault (loader, NULL) == NULL);
    aq_plugin_loader_destroy (&loader);
    assert (chmod (key_file, 0600) == 0);
    loader = s_loader (NULL, dir, &loaded);
    assert (loaded == 3 && aq_plugin_loader_vault (loader, NULL) == NULL);
    aq_plugin_loader_destroy (&loader);

    char *lines = rig_plugin_captured (log);
    rig_plugin_capture_end (saved);
    if (verbose)
        fputs (lines, stdout);
    assert (strstr (lines, "info vault-sodium: created vault key file '"));
    assert (strstr (lines, "error vault-sodium: AQ_VAULT_KEY must be 64 hex characters"));
    assert (strstr (lines, "must not be readable by others (mode 0644, needs 0600)"));
    assert (strstr (lines,
                    "error vault-sodium: no vault key: set AQ_VAULT_KEY or give a data directory"));
    assert (strstr (lines, "plugin 'vault-sodium' failed to open; skipped"));
    //  Never a secret in a log line
    assert (!strstr (lines, secret) && !strstr (lines, key_hex) && !strstr (lines, "deadbeefcafe"));
    free (lines);
    free (sealed);

    unlink (key_file);
    unlink (log);
    rmdir (data);
    free (dir);
    if (verbose)
        printf ("aq_plugin_vault_sodium: ok\n");
}
