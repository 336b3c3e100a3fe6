/*  query.h - the query string of a REST request, checked and typed

    A route names the query parameters it accepts, each at most once; they
    travel to the broker as fields of the request under their own names:
    strings as given, wait (the seconds a GET may be held) as an integer.
    Anything else is the client's 400, in the API's style.
*/
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include "aq_msg.h"

#include <stddef.h>

#define GW_QUERY_NAMES    5  //  most parameters a route accepts
#define GW_QUERY_WAIT_MAX 25 //  seconds a GET may be held (seed 000)

//  Parameters worth keeping of a request: among this many, one is unknown
//  or repeated, and the 400 for the first such is the answer whatever
//  follows.
#define GW_QUERY_MAX (GW_QUERY_NAMES + 1)

//  A query parameter as received.
typedef struct {
    const char *name;  //  its name
    const char *value; //  its value, NULL for a name alone ("?wait")
} gw_param_t;

//  Checks params (count of them, in arrival order) against accepted (at
//  most GW_QUERY_NAMES names, NULL-terminated) and writes each into msg as
//  a map entry; *wait_s is set when wait is one of them. Returns the
//  entries written, or -1 with the client message in error:
//    "Unknown query parameter: NAME"  (NAME in printable ASCII, 64 bytes at most)
//    "Duplicate query parameter: NAME"
//    "wait must be a number between 0 and 25"
//    "NAME must be valid UTF-8"
int gw_query_write (const char *const *accepted, const gw_param_t *params, size_t count,
                    aq_writer_t *msg, int *wait_s, char *error, size_t size);

void gw_query_test (bool verbose);

#endif
