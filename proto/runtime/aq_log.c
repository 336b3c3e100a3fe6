/*  aq_log.c - structured one-line logs on stderr */
#include "aq_log.h"
#include "aq_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_level = -1;

void aq_log_set_level (int level) {
    s_level = level;
}

static int s_current_level (void) {
    if (s_level < 0) {
        const char *env = getenv ("AQ_LOG_LEVEL");
        s_level = !env                         ? AQ_LOG_INFO
                  : strcmp (env, "debug") == 0 ? AQ_LOG_DEBUG
                  : strcmp (env, "warn") == 0  ? AQ_LOG_WARN
                  : strcmp (env, "error") == 0 ? AQ_LOG_ERROR
                                               : AQ_LOG_INFO;
    }
    return s_level;
}

void aq_log (int level, const char *component, const char *fmt, ...) {
    if (level < s_current_level ())
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048], stamp[32];
    int n = snprintf (line, sizeof line, "%s %s %s: ", aq_time_format (aq_time_now_ms (), stamp),
                      names[level], component);
    va_list args;
    va_start (args, fmt);
    if (n > 0 && n < (int) sizeof line)
        vsnprintf (line + n, sizeof line - (size_t) n, fmt, args);
    va_end (args);
    fprintf (stderr, "%s\n", line); //  one write per line, whole lines under threads
}
