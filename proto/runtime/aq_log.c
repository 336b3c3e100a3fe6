/*  aq_log.c - structured one-line logs on stderr */
#include "aq_log.h"
#include "aq_time.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MSG_MAX  2048                   //  bytes of a message kept, the rest cut
#define S_LINE_MAX (6 * S_MSG_MAX + 1024) //  a message escaped for JSON, with the rest

static atomic_int s_level = -1;
static atomic_int s_format = -1;

void aq_log_set_level (int level) {
    atomic_store (&s_level, level);
}

static int s_current_level (void) {
    int level = atomic_load (&s_level);
    if (level < 0) {
        const char *env = getenv ("AQ_LOG_LEVEL");
        level = !env                         ? AQ_LOG_INFO
                : strcmp (env, "debug") == 0 ? AQ_LOG_DEBUG
                : strcmp (env, "warn") == 0  ? AQ_LOG_WARN
                : strcmp (env, "error") == 0 ? AQ_LOG_ERROR
                                             : AQ_LOG_INFO;
        atomic_store (&s_level, level);
    }
    return level;
}

int aq_log_format_parse (const char *name) {
    return !name                        ? -1
           : strcmp (name, "text") == 0 ? AQ_LOG_TEXT
           : strcmp (name, "json") == 0 ? AQ_LOG_JSON
                                        : -1;
}

void aq_log_set_format (int format) {
    assert (format == AQ_LOG_TEXT || format == AQ_LOG_JSON);
    atomic_store (&s_format, format);
}

int aq_log_format (void) {
    int format = atomic_load (&s_format);
    if (format < 0) {
        format = aq_log_format_parse (getenv ("AQ_LOG_FORMAT"));
        format = format < 0 ? AQ_LOG_TEXT : format;
        atomic_store (&s_format, format);
    }
    return format;
}

//  Length of the valid UTF-8 sequence at text (at most left bytes), or 0.
static size_t s_utf8_length (const unsigned char *text, size_t left) {
    unsigned char c = text[0];
    size_t size = c < 0x80                ? 1
                  : c >= 0xC2 && c < 0xE0 ? 2
                  : c >= 0xE0 && c < 0xF0 ? 3
                  : c >= 0xF0 && c < 0xF5 ? 4
                                          : 0;
    if (size == 0 || size > left)
        return 0;
    for (size_t i = 1; i < size; i++)
        if ((text[i] & 0xC0) != 0x80)
            return 0;
    if (size == 3 && ((c == 0xE0 && text[1] < 0xA0) || (c == 0xED && text[1] >= 0xA0)))
        return 0; //  overlong, or a surrogate
    if (size == 4 && ((c == 0xF0 && text[1] < 0x90) || (c == 0xF4 && text[1] >= 0x90)))
        return 0; //  overlong, or beyond U+10FFFF
    return size;
}

//  Appends text as a JSON string (quotes included) at out + *used, within
//  size; a byte that is not UTF-8 becomes U+FFFD. Stops short rather than
//  overflow (the caller sizes out for the worst case, 6 bytes a byte).
static void s_json_string (char *out, size_t size, size_t *used, const char *text) {
    size_t n = *used;
    const unsigned char *p = (const unsigned char *) text;
    if (n + 2 >= size)
        return;
    out[n++] = '"';
    while (*p && n + 8 < size) {
        size_t len = s_utf8_length (p, strlen ((const char *) p));
        if (len == 0) {
            n += (size_t) snprintf (out + n, size - n, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char) *p++;
        } else if (*p < 0x20 || *p == 0x7F) {
            const char *named = *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\t' ? "\\t" : NULL;
            n += named ? (size_t) snprintf (out + n, size - n, "%s", named)
                       : (size_t) snprintf (out + n, size - n, "\\u%04x", *p);
            p++;
        } else {
            memcpy (out + n, p, len);
            n += len;
            p += len;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    *used = n;
}

//  Appends ,"name":value (value as a JSON string).
static void s_json_field (char *out, size_t size, size_t *used, const char *name,
                          const char *value) {
    *used += (size_t) snprintf (out + *used, size - *used, ",\"%s\":", name);
    if (*used < size)
        s_json_string (out, size, used, value);
}

static void s_write (int level, const char *component, const char *task_id, const char *trace_id,
                     const char *fmt, va_list args) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[S_MSG_MAX], stamp[32], line[S_LINE_MAX];
    vsnprintf (msg, sizeof msg, fmt, args);
    aq_time_format (aq_time_now_ms (), stamp);
    size_t n = 0;
    if (aq_log_format () == AQ_LOG_JSON) {
        n = (size_t) snprintf (line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\"", stamp,
                               names[level]);
        s_json_field (line, sizeof line, &n, "component", component);
        s_json_field (line, sizeof line, &n, "msg", msg);
        if (task_id)
            s_json_field (line, sizeof line, &n, "taskId", task_id);
        if (trace_id)
            s_json_field (line, sizeof line, &n, "traceId", trace_id);
        snprintf (line + n, sizeof line - n, "}");
    } else {
        n = (size_t) snprintf (line, sizeof line, "%s %s %s: %s", stamp, names[level], component,
                               msg);
        if (task_id && n < sizeof line)
            n += (size_t) snprintf (line + n, sizeof line - n, " task=%s", task_id);
        if (trace_id && n < sizeof line)
            snprintf (line + n, sizeof line - n, " trace=%s", trace_id);
    }
    fprintf (stderr, "%s\n", line); //  one write per line, whole lines under threads
}

void aq_log (int level, const char *component, const char *fmt, ...) {
    if (level < s_current_level ())
        return;
    va_list args;
    va_start (args, fmt);
    s_write (level, component, NULL, NULL, fmt, args);
    va_end (args);
}

void aq_log_task (int level, const char *component, const char *task_id, const char *trace_id,
                  const char *fmt, ...) {
    if (level < s_current_level ())
        return;
    va_list args;
    va_start (args, fmt);
    s_write (level, component, task_id, trace_id, fmt, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  Selftest: stderr into a file, each line read back

//  Runs fn with stderr going to a temporary file; returns what it wrote
//  (caller frees).
static char *s_capture (void (*fn) (void)) {
    FILE *file = tmpfile ();
    assert (file);
    fflush (stderr);
    int saved = dup (2);
    assert (saved >= 0 && dup2 (fileno (file), 2) == 2);
    fn ();
    fflush (stderr);
    assert (dup2 (saved, 2) == 2);
    close (saved);
    long size = ftell (file);
    assert (size >= 0);
    char *text = calloc (1, (size_t) size + 1);
    rewind (file);
    assert (text && fread (text, 1, (size_t) size, file) == (size_t) size);
    fclose (file);
    return text;
}

static void s_lines (void) {
    aq_log (AQ_LOG_INFO, "broker", "listening on '%s'", "tcp://x");
    aq_log (AQ_LOG_DEBUG, "broker", "dropped: below the level");
    aq_log_task (AQ_LOG_WARN, "worker", "0190-ab", "4bf92f3577b34da6a3ce929d0e0e4736",
                 "quote \" backslash \\ tab\t newline\n bell\a del\x7f bad \xff\xc3( é €");
    aq_log_task (AQ_LOG_ERROR, "worker", "t1", NULL, "%s", "no trace");
}

static void s_long_line (void) {
    char *big = malloc (3 * S_MSG_MAX);
    assert (big);
    memset (big, '"', 3 * S_MSG_MAX - 1);
    big[3 * S_MSG_MAX - 1] = '\0';
    aq_log (AQ_LOG_ERROR, "broker", "%s", big);
    free (big);
}

void aq_log_test (bool verbose) {
    if (verbose)
        printf (" * aq_log: ");
    assert (aq_log_format_parse ("text") == AQ_LOG_TEXT);
    assert (aq_log_format_parse ("json") == AQ_LOG_JSON);
    assert (aq_log_format_parse ("JSON") == -1 && aq_log_format_parse (NULL) == -1);
    aq_log_set_level (AQ_LOG_INFO);

    //  Text: the stamp, level, component, message; task and trace after it
    aq_log_set_format (AQ_LOG_TEXT);
    assert (aq_log_format () == AQ_LOG_TEXT);
    char *text = s_capture (s_lines);
    assert (strlen (text) > 24 && text[4] == '-' && text[10] == 'T' && text[23] == 'Z');
    assert (strstr (text, " info broker: listening on 'tcp://x'\n"));
    assert (!strstr (text, "below the level"));
    assert (strstr (text, " task=0190-ab trace=4bf92f3577b34da6a3ce929d0e0e4736\n"));
    assert (strstr (text, " error worker: no trace task=t1\n"));
    free (text);

    //  JSON: one object a line, every string escaped, bad UTF-8 replaced
    aq_log_set_format (AQ_LOG_JSON);
    text = s_capture (s_lines);
    assert (strncmp (text, "{\"time\":\"", 9) == 0);
    assert (strstr (text, "Z\",\"level\":\"info\",\"component\":\"broker\",\"msg\":\"listening "
                          "on 'tcp://x'\"}\n"));
    assert (strstr (
        text, "\"level\":\"warn\",\"component\":\"worker\",\"msg\":\"quote \\\" backslash "
              "\\\\ tab\\t newline\\n bell\\u0007 del\\u007f bad \\ufffd\\ufffd( é "
              "€\",\"taskId\":\"0190-ab\",\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n"));
    assert (strstr (text, "\"msg\":\"no trace\",\"taskId\":\"t1\"}\n"));
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert (lines == 3);
    free (text);

    //  A message past S_MSG_MAX is cut, and its line still closes
    text = s_capture (s_long_line);
    size_t size = strlen (text);
    assert (size > 2 * S_MSG_MAX && size < S_LINE_MAX + 1);
    assert (strcmp (text + size - 5, "\\\"\"}\n") == 0);
    free (text);

    aq_log_set_format (AQ_LOG_TEXT);
    if (verbose)
        printf ("OK\n");
}
