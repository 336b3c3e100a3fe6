/*  response.h - HTTP responses: broker REPLYs rendered, and local answers

    A REPLY is read in place (aq_msg) and its body rendered as compact JSON
    with aq_json, the bytes jansson gave; a /metrics body becomes
    Prometheus text (metrics.c). Error bodies are {"error": "..."}, the
    API's style.
*/
#ifndef GW_RESPONSE_H
#define GW_RESPONSE_H

#include "aq_msg.h"
#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_ALLOW_MAX 32 //  room for an Allow header value

//  An HTTP response ready to queue.
typedef struct {
    int status;               //  HTTP status, 0 while unset
    char *body;               //  malloc'd text, owned (NULL only while unset)
    size_t body_size;         //  its length
    const char *content_type; //  static string
    int retry_after;          //  seconds for Retry-After, 0 for none
    char allow[GW_ALLOW_MAX]; //  Allow header value, "" for none
} gw_response_t;

//  Sets self from a broker REPLY {status, body?, error?, retryAfter?} (a
//  map, read in place): the body verbatim as compact JSON, else {"error":
//  error}, else {"error": the status's reason} from 400 up, else {};
//  Retry-After from retryAfter (at most a day). With metrics (GET
//  /metrics), a 200 map body is rendered as Prometheus text with count
//  gauges of the gateway itself (gateway may be NULL). A status that is
//  not an integer from 200 to 599, or a body JSON cannot hold, is a 502
//  "Bad reply from broker". Returns 0, or -1 when out of memory (self then
//  unset).
int gw_response_reply (gw_response_t *self, const aq_node_t *reply, bool metrics,
                       const gw_gauge_t *gateway, size_t count);

//  {"status":"ok","broker":"ok"|"unreachable"} for GET /healthz.
int gw_response_healthz (gw_response_t *self, bool broker_ok);

//  GET /readyz: 200 {"status":"ready"} when the broker answers (it does only
//  once its store is open and its log replayed), else 503 {"error":"Broker
//  unavailable"} with Retry-After: 1.
int gw_response_readyz (gw_response_t *self, bool broker_ok);

//  Sets self to status with {"error": message}. Returns 0 or -1 (out of memory).
int gw_response_error (gw_response_t *self, int status, const char *message);

//  Frees the body; the struct may be reused.
void gw_response_release (gw_response_t *self);

void gw_response_test (bool verbose);

#endif
