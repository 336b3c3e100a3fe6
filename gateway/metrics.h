/*  metrics.h - a STATS reply as Prometheus text (exposition format 0.0.4) */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

//  A figure of the gateway itself, for the page.
typedef struct {
    const char *name; //  camelCase, as the broker's keys
    int64_t value;    //  its value
} gw_gauge_t;

//  Renders whatever the broker's STATS body (a map) holds:
//    tasks {status: n}        asyncqueue_tasks{status="..."} gauge
//    counters {name: n}       asyncqueue_tasks_<name>_total counters (created,
//                             dispatched, completed, failed, retried),
//                             asyncqueue_malformed_messages_total, else
//                             asyncqueue_<name>_total
//    workers n                asyncqueue_workers_connected gauge
//    lmdbBytes n              asyncqueue_lmdb_bytes gauge
//    attemptLatencyMs {le: n} asyncqueue_attempt_duration_ms histogram; counts
//                             are cumulative (attempts with duration <= le ms),
//                             "+Inf" is the total; attemptLatencySumMs, when
//                             present, gives _sum
//    any other number         asyncqueue_<snake_name> gauge
//    any other {k: n}         asyncqueue_<snake_name>{key="k"} gauge
//    scope "team" | "global"  not rendered; "team" (a team key's STATS)
//                             leaves out the gateway gauges below
//  Numbers are integers, finite floats and booleans (1, 0); entries under a
//  key that is not a string are left out. Then the count gauges of the
//  gateway (may be NULL) as asyncqueue_gateway_<name> gauges.
//  Returns malloc'd text the caller frees; NULL when out of memory.
char *gw_metrics_render (const aq_node_t *stats, const gw_gauge_t *gateway, size_t count);

void gw_metrics_test (bool verbose);

#endif
