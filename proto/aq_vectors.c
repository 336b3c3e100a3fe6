/*  aq_vectors.c - the C codec against the golden vectors in proto/vectors

    Each proto/vectors/<name>.json holds one message {"cmd": "TASK_CREATE",
    "fields": {...}} and <name>.hex its exact frame. The frames come from an
    independent encoder (tests/aqtest.py, written from the msgpack spec), so
    agreement here means both sides speak the same bytes: maps in insertion
    order, the smallest form of every integer, string and length.

    The selftest runs from the repository root (aq-selftest, make test).
*/
#include "aq_codec.h"

#include <assert.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VECTORS "proto/vectors"

//  Command id for a name such as "TASK_CREATE"; -1 if there is none.
static int s_command (const char *name) {
    for (int cmd = 0; cmd < 256 && name; cmd++) {
        const char *known = aq_proto_name (cmd);
        if (known && strcmp (known, name) == 0)
            return cmd;
    }
    return -1;
}

static int s_nibble (int c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

//  Bytes of a hex file (whitespace ignored). Returns a malloc'd buffer the
//  caller frees and sets *size; NULL if unreadable or not hex.
static uint8_t *s_read_hex (const char *path, size_t *size) {
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    size_t alloc = 1024, used = 0;
    uint8_t *data = malloc (alloc);
    int high = -1, c;
    bool ok = data != NULL;
    while (ok && (c = fgetc (file)) != EOF) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        int nibble = s_nibble (c);
        if (nibble < 0)
            ok = false;
        else if (high < 0)
            high = nibble;
        else {
            if (used == alloc) {
                uint8_t *grown = realloc (data, alloc *= 2);
                if (!grown)
                    ok = false;
                else
                    data = grown;
            }
            if (ok)
                data[used++] = (uint8_t) (high << 4 | nibble);
            high = -1;
        }
    }
    fclose (file);
    if (!ok || high >= 0) {
        free (data);
        return NULL;
    }
    *size = used;
    return data;
}

static void s_print_hex (const char *label, const uint8_t *data, size_t size) {
    fprintf (stderr, "  %s ", label);
    for (size_t i = 0; i < size; i++)
        fprintf (stderr, "%02x", data[i]);
    fprintf (stderr, "\n");
}

//  Checks one vector; returns true if both directions agree, else says why.
static bool s_check (const char *json_path, bool verbose) {
    bool ok = false;
    char hex_path[4096];
    uint8_t *golden = NULL, *frame = NULL;
    size_t golden_size = 0, frame_size = 0;
    json_t *decoded = NULL;
    json_error_t error;
    json_t *doc = json_load_file (json_path, 0, &error);
    if (!doc) {
        fprintf (stderr, "aq_vectors: %s: %s at line %d\n", json_path, error.text, error.line);
        goto out;
    }
    int cmd = s_command (json_string_value (json_object_get (doc, "cmd")));
    json_t *fields = json_object_get (doc, "fields");
    if (cmd < 0 || !json_is_object (fields)) {
        fprintf (stderr, "aq_vectors: %s: needs a known \"cmd\" and a \"fields\" object\n",
                 json_path);
        goto out;
    }
    snprintf (hex_path, sizeof hex_path, "%.*s.hex", (int) (strlen (json_path) - 5), json_path);
    golden = s_read_hex (hex_path, &golden_size);
    if (!golden) {
        fprintf (stderr, "aq_vectors: cannot read %s\n", hex_path);
        goto out;
    }
    frame = aq_codec_encode (cmd, fields, &frame_size);
    if (!frame || frame_size != golden_size || memcmp (frame, golden, golden_size) != 0) {
        fprintf (stderr, "aq_vectors: %s: aq_codec_encode differs from the vector\n", json_path);
        if (frame)
            s_print_hex ("encoded:", frame, frame_size);
        s_print_hex ("vector: ", golden, golden_size);
        goto out;
    }
    int decoded_cmd = 0;
    int rc = aq_codec_decode (golden, golden_size, &decoded_cmd, &decoded);
    if (rc != 0 || decoded_cmd != cmd || !json_equal (decoded, fields)) {
        fprintf (stderr, "aq_vectors: %s: aq_codec_decode of the vector gives %s\n", json_path,
                 rc ? aq_proto_strerror (rc) : "other fields");
        goto out;
    }
    if (verbose)
        printf ("aq_vectors: %s ok (%zu bytes)\n", json_path, golden_size);
    ok = true;
out:
    json_decref (decoded);
    free (frame);
    free (golden);
    json_decref (doc);
    return ok;
}

void aq_vectors_test (bool verbose) {
    glob_t found;
    int rc = glob (S_VECTORS "/*.json", 0, NULL, &found);
    if (rc != 0)
        fprintf (stderr, "aq_vectors: no vectors in '%s' (run from the repository root)\n",
                 S_VECTORS);
    assert (rc == 0 && found.gl_pathc > 0);
    size_t failed = 0;
    for (size_t i = 0; i < found.gl_pathc; i++)
        if (!s_check (found.gl_pathv[i], verbose))
            failed++;
    if (verbose || failed)
        printf ("aq_vectors: %zu vectors, %zu failed\n", found.gl_pathc, failed);
    globfree (&found);
    assert (failed == 0);
}
