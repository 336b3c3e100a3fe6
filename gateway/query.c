/*  query.c - the query string of a REST request, checked and typed */
#include "query.h"
#include "json.h"

#include "aq_json.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Copies name into buf for an error message: printable ASCII, at most 64 bytes.
static const char *s_printable (const char *name, char *buf, size_t size) {
    size_t i = 0;
    for (; name[i] && i + 1 < size && i < 64; i++)
        buf[i] = isprint ((unsigned char) name[i]) ? name[i] : '?';
    buf[i] = 0;
    return buf;
}

//  Parses a wait value: 0..25 in plain digits. Returns it, or -1.
static int s_wait (const char *text) {
    size_t len = strlen (text);
    if (len == 0 || len > 4 || strspn (text, "0123456789") != len)
        return -1;
    int wait = atoi (text);
    return wait <= GW_QUERY_WAIT_MAX ? wait : -1;
}

int gw_query_write (const char *const *accepted, const gw_param_t *params, size_t count,
                    aq_writer_t *msg, int *wait_s, char *error, size_t size) {
    assert (accepted && (params || count == 0) && msg && wait_s && error);
    unsigned seen = 0; //  a bit per name of accepted
    char name_buf[80];
    for (size_t q = 0; q < count; q++) {
        const char *name = params[q].name, *value = params[q].value ? params[q].value : "";
        int known = -1;
        for (int i = 0; accepted[i]; i++)
            if (strcmp (accepted[i], name) == 0)
                known = i;
        if (known < 0) {
            snprintf (error, size, "Unknown query parameter: %s",
                      s_printable (name, name_buf, sizeof name_buf));
            return -1;
        }
        if (seen & 1u << known) {
            snprintf (error, size, "Duplicate query parameter: %s", name);
            return -1;
        }
        seen |= 1u << known;
        if (strcmp (name, "wait") == 0) {
            *wait_s = s_wait (value);
            if (*wait_s < 0) {
                snprintf (error, size, "wait must be a number between 0 and %d", GW_QUERY_WAIT_MAX);
                return -1;
            }
            aq_write_kv_int (msg, name, *wait_s);
        } else if (gw_json_utf8 (value, strlen (value)))
            aq_write_kv_str (msg, name, value);
        else {
            snprintf (error, size, "%s must be valid UTF-8", name);
            return -1;
        }
    }
    return (int) count;
}

//  --------------------------------------------------------------------------
//  Selftest

static const char *s_list[] = {"status", "limit", "offset", "sortOrder", NULL};
static const char *s_get[] = {"wait", NULL};

//  params are accepted, written as want (the entries as a JSON object).
static void s_expect_fields (const char *const *accepted, const gw_param_t *params, size_t count,
                             const char *want) {
    aq_writer_t msg;
    aq_writer_init (&msg);
    size_t mark = aq_write_map_open (&msg);
    char error[128];
    int wait_s = -1;
    int written = gw_query_write (accepted, params, count, &msg, &wait_s, error, sizeof error);
    assert (written == (int) count);
    aq_write_map_close (&msg, mark, (uint32_t) written);
    size_t size;
    const uint8_t *data = aq_writer_data (&msg, &size);
    aq_node_t map;
    assert (aq_msg_parse (data, size, &map) == 0);
    char *text = aq_json_dumps (&map);
    if (strcmp (text, want) != 0) {
        fprintf (stderr, "gw_query: wrote %s, not %s\n", text, want);
        assert (false);
    }
    free (text);
    aq_writer_release (&msg);
}

//  params are refused with message.
static void s_expect_refused (const char *const *accepted, const gw_param_t *params, size_t count,
                              const char *message) {
    aq_writer_t msg;
    aq_writer_init (&msg);
    char error[128];
    int wait_s = -1;
    if (gw_query_write (accepted, params, count, &msg, &wait_s, error, sizeof error) != -1 ||
        strcmp (error, message) != 0) {
        fprintf (stderr, "gw_query: not refused with '%s'\n", message);
        assert (false);
    }
    aq_writer_release (&msg);
}

#define S_PARAMS(...)                                                                              \
    (gw_param_t[]){__VA_ARGS__}, sizeof ((gw_param_t[]){__VA_ARGS__}) / sizeof (gw_param_t)

void gw_query_test (bool verbose) {
    if (verbose)
        printf (" * gw_query: ");

    //  Strings as given, in arrival order; a name alone is ""
    s_expect_fields (
        s_list,
        S_PARAMS ({"status", "pending"}, {"limit", "10"}, {"offset", "20"}, {"sortOrder", "asc"}),
        "{\"status\":\"pending\",\"limit\":\"10\",\"offset\":\"20\","
        "\"sortOrder\":\"asc\"}");
    s_expect_fields (s_list, S_PARAMS ({"limit", "\xc3\xa9"}, {"status", NULL}),
                     "{\"limit\":\"\xc3\xa9\",\"status\":\"\"}");
    s_expect_fields (s_list, NULL, 0, "{}");

    //  wait: 0..25 in digits, an integer
    s_expect_fields (s_get, S_PARAMS ({"wait", "20"}), "{\"wait\":20}");
    s_expect_fields (s_get, S_PARAMS ({"wait", "0025"}), "{\"wait\":25}");
    aq_writer_t msg;
    aq_writer_init (&msg);
    char error[128];
    int wait_s = -1;
    assert (gw_query_write (s_get, S_PARAMS ({"wait", "7"}), &msg, &wait_s, error, sizeof error) ==
                1 &&
            wait_s == 7);
    aq_writer_release (&msg);
    const char *bad_waits[] = {"26", "-1", "", "2.5", "abc", "1e1", "99999", " 5", NULL};
    for (int i = 0; bad_waits[i]; i++)
        s_expect_refused (s_get, S_PARAMS ({"wait", bad_waits[i]}),
                          "wait must be a number between 0 and 25");
    s_expect_refused (s_get, S_PARAMS ({"wait", NULL}), "wait must be a number between 0 and 25");

    //  Unknown, repeated, not UTF-8: the first problem in arrival order
    s_expect_refused (s_get, S_PARAMS ({"limit", "5"}), "Unknown query parameter: limit");
    s_expect_refused (s_list, S_PARAMS ({"sortorder", NULL}), "Unknown query parameter: sortorder");
    s_expect_refused (s_list, S_PARAMS ({"bad\x01name\xff", "1"}),
                      "Unknown query parameter: bad?name?");
    s_expect_refused (s_get, S_PARAMS ({"wait", "0"}, {"wait", "1"}),
                      "Duplicate query parameter: wait");
    s_expect_refused (s_list, S_PARAMS ({"status", "p\xc3\x28"}), "status must be valid UTF-8");
    s_expect_refused (s_list, S_PARAMS ({"limit", "x"}, {"limit", "y"}, {"z", "1"}),
                      "Duplicate query parameter: limit");
    //  GW_QUERY_MAX of them always hold a problem: here the repeated limit
    s_expect_refused (s_list,
                      S_PARAMS ({"status", "a"}, {"limit", "1"}, {"offset", "2"},
                                {"sortOrder", "asc"}, {"limit", "3"}, {"x", "4"}),
                      "Duplicate query parameter: limit");

    if (verbose)
        printf ("OK\n");
}
