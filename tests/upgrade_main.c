/*  upgrade_main.c - the upgrade's selftests on their own: aq-upgrade-test [-v] [-t name]

    A stand-in for aq-selftest, which does not link while the scheduler
    moves to broker/sched/: it runs the selftests of the modules the
    upgrade is made of, each in a child process, and ends with one line
    "N passed, N failed". Once aq-selftest links, bk_upgrade_task,
    bk_upgrade_v1 and bk_upgrade belong in broker/bk_tests.h and this
    file goes. Build (from the tree's top):

        make SAN=1 BUILD=build/san build/san/obj-san/tests/upgrade_main.o \
             build/san/obj-san/tests/rig_v1.o build/san/lib/libaqbroker.a \
             build/san/lib/libasyncqueue.a
        cc -fsanitize=address,undefined -Wl,--gc-sections -o build/san/bin/aq-upgrade-test \
           build/san/obj-san/tests/upgrade_main.o build/san/obj-san/tests/rig_v1.o \
           build/san/lib/libaqbroker.a build/san/lib/libasyncqueue.a \
           $(pkg-config --libs libzmq libczmq lmdb msgpack jansson libsodium) -lpthread -ldl -lm
*/
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void bk_store_test (bool verbose);
void bk_task_test (bool verbose);
void bk_keys_test (bool verbose);
void bk_tokens_test (bool verbose);
void bk_upgrade_task_test (bool verbose);
void bk_upgrade_v1_test (bool verbose);
void bk_upgrade_test (bool verbose);

static const struct {
    const char *name;            //  module name
    void (*test) (bool verbose); //  its selftest
} s_tests[] = {{"bk_store", bk_store_test},
               {"bk_task", bk_task_test},
               {"bk_keys", bk_keys_test},
               {"bk_tokens", bk_tokens_test},
               {"bk_upgrade_task", bk_upgrade_task_test},
               {"bk_upgrade_v1", bk_upgrade_v1_test},
               {"bk_upgrade", bk_upgrade_test},
               {NULL, NULL}};

int main (int argc, char **argv) {
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp (argv[i], "-t") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf (stderr, "usage: aq-upgrade-test [-v] [-t name]\n");
            return 2;
        }
    }
    int passed = 0, failed = 0;
    for (int t = 0; s_tests[t].name; t++) {
        if (only && strcmp (only, s_tests[t].name) != 0)
            continue;
        fflush (stdout);
        pid_t pid = fork ();
        if (pid == 0) {
            s_tests[t].test (verbose);
            exit (0); //  not _exit: LeakSanitizer checks at exit
        }
        int status = 0;
        waitpid (pid, &status, 0);
        bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
        printf ("%s selftest %s\n", ok ? "PASS" : "FAIL", s_tests[t].name);
        ok ? passed++ : failed++;
    }
    printf ("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
