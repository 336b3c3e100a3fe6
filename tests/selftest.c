/*  selftest.c - runs every module's selftest: aq-selftest [-v] [-t name]

    Each module lists its selftest in its component's *_tests.h; a selftest
    asserts (abort on failure), so a test that returns has passed. Each runs
    in a child process so one failure does not hide the others.
*/
#include "../broker/bk_tests.h"
#include "../gateway/gw_tests.h"
#include "../plugins/plugin_tests.h"
#include "../proto/aq_tests.h"
#include "../workers/wk_tests.h"
#include "provider_host.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DECLARE(name) void name##_test (bool verbose);
AQ_PROTO_TESTS (DECLARE)
BK_TESTS (DECLARE)
WK_TESTS (DECLARE)
GW_TESTS (DECLARE)
AQ_PLUGIN_TESTS (DECLARE)

typedef struct {
    const char *name;            //  module name
    void (*test) (bool verbose); //  its selftest
} s_entry_t;

#define ENTRY(name) {#name, name##_test},
static const s_entry_t s_tests[] = {AQ_PROTO_TESTS (ENTRY) BK_TESTS (ENTRY) WK_TESTS (ENTRY)
                                        GW_TESTS (ENTRY) AQ_PLUGIN_TESTS (ENTRY){NULL, NULL}};

int main (int argc, char **argv) {
    if (aq_provider_host_wanted (argc, argv)) //  bk_providers' test starts hosts
        return aq_provider_host_main (argc, argv);
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp (argv[i], "-t") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf (stderr, "usage: aq-selftest [-v] [-t name]\n");
            return 2;
        }
    }
    int passed = 0, failed = 0;
    for (const s_entry_t *t = s_tests; t->name; t++) {
        if (only && strcmp (only, t->name) != 0)
            continue;
        fflush (stdout);
        pid_t pid = fork ();
        if (pid == 0) {
            t->test (verbose);
            exit (0); //  not _exit: LeakSanitizer checks at exit
        }
        int status = 0;
        waitpid (pid, &status, 0);
        bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
        printf ("%s selftest %s\n", ok ? "PASS" : "FAIL", t->name);
        ok ? passed++ : failed++;
    }
    printf ("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
