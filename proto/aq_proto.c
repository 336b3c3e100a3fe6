/*  aq_proto.c - the asyncqueue protocol: names and error texts */
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

const char *aq_proto_name (int cmd) {
    switch (cmd) {
#define AQ_PROTO_NAME(name, id, doc)                                                               \
    case id:                                                                                       \
        return #name;
        AQ_PROTO_COMMANDS (AQ_PROTO_NAME)
#undef AQ_PROTO_NAME
    }
    return NULL;
}

const char *aq_proto_strerror (int code) {
    switch (code) {
    case AQ_EPROTO_SHORT:
        return "frame shorter than the protocol header";
    case AQ_EPROTO_SIGNATURE:
        return "bad protocol signature";
    case AQ_EPROTO_VERSION:
        return "unsupported protocol version";
    case AQ_EPROTO_COMMAND:
        return "unknown command";
    case AQ_EPROTO_MALFORMED:
        return "malformed message body";
    case AQ_EPROTO_NOMEM:
        return "out of memory";
    case AQ_EPROTO_BUDGET:
        return "message would take more than 128 MiB to decode";
    }
    return "unknown error";
}

void aq_proto_test (bool verbose) {
    assert (strcmp (aq_proto_name (AQ_CMD_JOB), "JOB") == 0);
    assert (strcmp (aq_proto_name (AQ_CMD_EVENT_FIRE), "EVENT_FIRE") == 0);
    assert (aq_proto_name (99) == NULL && aq_proto_name (0) == NULL);
    assert (strcmp (aq_proto_strerror (AQ_EPROTO_VERSION), "unsupported protocol version") == 0);
    assert (strcmp (aq_proto_strerror (12345), "unknown error") == 0);
    if (verbose)
        printf ("aq_proto: ok\n");
}
