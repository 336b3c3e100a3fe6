/*  query.h - the query string of a REST request, checked and typed

    A route names the query parameters it accepts, each at most once but
    label (GET /v1/tasks: all given must match), which may come up to
    GW_QUERY_REPEATS times; they travel to the broker as fields of the
    request under their own names: strings as given, wait (the seconds a
    GET may be held) as an integer, label as an array of its values in
    arrival order. Anything else is the client's 400, in the API's style.
*/
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include "aq_msg.h"

#include <stddef.h>

#define GW_QUERY_NAMES    10 //  most parameters a route accepts
#define GW_QUERY_REPEATS  16 //  most values of label (a task's labels, SPEC 11)
#define GW_QUERY_WAIT_MAX 25 //  seconds a GET may be held (seed 000)

//  Parameters worth keeping of a request: GW_QUERY_NAMES - 1 others and
//  GW_QUERY_REPEATS labels are the most a request may give, so among this
//  many one is unknown, repeated or a label too many, and the 400 for the
//  first such is the answer whatever follows.
#define GW_QUERY_MAX (GW_QUERY_NAMES + GW_QUERY_REPEATS)

//  A query parameter as received.
typedef struct {
    const char *name;  //  its name
    const char *value; //  its value, NULL for a name alone ("?wait")
} gw_param_t;

//  Checks params (count of them, in arrival order) against accepted (at
//  most GW_QUERY_NAMES names, NULL-terminated) and writes each into msg as
//  a map entry (label's values as one); *wait_s is set when wait is one of
//  them. Returns the entries written, or -1 with the client message in
//  error, for the first problem in arrival order:
//    "Unknown query parameter: NAME"  (NAME in printable ASCII, 64 bytes at most)
//    "Duplicate query parameter: NAME"
//    "label may be given at most 16 times"
//    "wait must be a number between 0 and 25"
//    "NAME must be valid UTF-8"
int gw_query_write (const char *const *accepted, const gw_param_t *params, size_t count,
                    aq_writer_t *msg, int *wait_s, char *error, size_t size);

void gw_query_test (bool verbose);

#endif
