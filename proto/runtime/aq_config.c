/*  aq_config.c - a configuration file as command-line options */
#include "aq_config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_push (char ***argv, int *argc, const char *arg) {
    *argv = realloc (*argv, (size_t) (*argc + 2) * sizeof **argv);
    assert (*argv);
    (*argv)[(*argc)++] = strdup (arg);
    (*argv)[*argc] = NULL;
}

static char *s_trim (char *text) {
    while (isspace ((unsigned char) *text))
        text++;
    char *end = text + strlen (text);
    while (end > text && isspace ((unsigned char) end[-1]))
        *--end = '\0';
    return text;
}

char **aq_config_expand (int argc, char **argv, int *argc_p) {
    const char *path = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp (argv[i], "--config") == 0)
            path = argv[i + 1];
    char **out = NULL;
    int n = 0;
    s_push (&out, &n, argc > 0 ? argv[0] : "");
    if (path) {
        FILE *file = fopen (path, "r");
        if (!file) {
            fprintf (stderr, "cannot read config '%s': %s\n", path, strerror (errno));
            aq_config_free (&out, n);
            return NULL;
        }
        char line[4096];
        while (fgets (line, sizeof line, file)) {
            char *hash = strchr (line, '#');
            if (hash)
                *hash = '\0';
            char *text = s_trim (line);
            if (!*text)
                continue;
            char *value = text + strcspn (text, " \t=");
            if (*value) {
                *value++ = '\0';
                value = s_trim (value);
                if (*value == '=')
                    value = s_trim (value + 1);
            }
            char option[512];
            snprintf (option, sizeof option, "--%s", text);
            s_push (&out, &n, option);
            if (*value)
                s_push (&out, &n, value);
        }
        fclose (file);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--config") == 0 && i + 1 < argc) {
            i++;
            continue;
        }
        s_push (&out, &n, argv[i]);
    }
    *argc_p = n;
    return out;
}

void aq_config_free (char ***argv_p, int argc) {
    if (!*argv_p)
        return;
    for (int i = 0; i < argc; i++)
        free ((*argv_p)[i]);
    free (*argv_p);
    *argv_p = NULL;
}

void aq_config_test (bool verbose) {
    char path[] = "/tmp/aq-config-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fprintf (file,
             "# a comment\nlisten 127.0.0.1:9999\n  workers = 4  \nallow-private-targets\n\n");
    fclose (file);
    char *argv[] = {"prog", "--config", path, "--workers", "2", NULL};
    int argc;
    char **out = aq_config_expand (5, argv, &argc);
    assert (out && argc == 8);
    const char *want[] = {"prog",      "--listen", "127.0.0.1:9999",
                          "--workers", "4",        "--allow-private-targets",
                          "--workers", "2"};
    for (int i = 0; i < argc; i++)
        assert (strcmp (out[i], want[i]) == 0);
    assert (out[argc] == NULL);
    aq_config_free (&out, argc);
    remove (path);
    char *missing[] = {"prog", "--config", "/nonexistent/x", NULL};
    assert (aq_config_expand (3, missing, &argc) == NULL);
    if (verbose)
        printf ("aq_config: ok\n");
}
