/*  task_filter.h - the tasks a filter matches, found through the indexes

    A filter (GET /v1/tasks' query, or a bulk job's "filter") names a
    status, labels that must all match, a targetUrl prefix, a provider, a
    flow-control key and a creation-time range. A query answers it without
    scanning the store: it walks one index range in creation order, the
    one with the fewest entries, and checks the rest of the filter on each
    task's record:

      - a filter with labels, targetUrl, provider or flowControlKey walks
        the entries of the filter's smallest digest (task_index.h) in the
        status asked for, or in all nine statuses merged by creation order;
      - status alone walks BK_DB_TEAM_STATUS, nothing at all the team's
        BK_DB_TEAM_TASKS;
      - createdAfter and createdBefore become bounds on the creation
        sequence (seq and createdAt grow together: engine.h), found by a
        binary search over the team's tasks.

    The range's counter is the total when nothing is left to check (one
    such filter at most, a targetUrl that ends with a '/' of its path, no
    time range). Otherwise the walk counts, within its budget.

    The rest of the filter is checked without reading the task where it
    can: another label, provider or flow key (or a targetUrl that ends
    with a '/' of its path) is a probe of that digest's index for the
    task's key in the status of the range being walked; only a targetUrl
    cut elsewhere reads the record. A walk's cost is counted in budget
    units: S_VISIT per index entry, S_PROBE per probe, S_CHECK per record
    read (task_filter.c). The caller gives a budget and a walk stops,
    saying so, when it is spent: no request holds the broker's loop for
    long, whatever it asks.
*/
#ifndef BK_TASK_FILTER_H
#define BK_TASK_FILTER_H

#include "aq_msg.h"
#include "store.h"
#include "task.h"
#include "task_request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *name;  //  label name (borrowed)
    size_t name_size;     //  its length
    const uint8_t *value; //  the value it must have (borrowed)
    size_t value_size;    //  its length
} bk_label_match_t;

//  What a list or a bulk job asks for. Strings borrow the request (or the
//  stored job) they were read from.
typedef struct {
    int status;                             //  bk_status_t, 0: any
    int nlabels;                            //  labels that must all match
    bk_label_match_t labels[BK_LABELS_MAX]; //  the labels
    const char *url;                        //  targetUrl prefix, NULL: any
    size_t url_size;                        //  its length
    const char *provider;                   //  provider, NULL: any
    size_t provider_size;                   //  its length
    const char *flow_key;                   //  flow-control key, NULL: any
    size_t flow_key_size;                   //  its length
    int64_t created_after;                  //  createdAt >= this (ms), -1: no bound
    int64_t created_before;                 //  createdAt < this (ms), -1: no bound
} bk_task_filter_t;

//  Reads a filter from TASK_LIST's fields (GET /v1/tasks' query, values as
//  strings): status, label (a string or an array of them, each
//  "name:value"), targetUrl, provider, flowControlKey, createdAfter,
//  createdBefore. Returns NULL, or the client message (static or in
//  errbuf). self borrows request.
const char *bk_task_filter_query (bk_task_filter_t *self, const aq_node_t *request, char *errbuf,
                                  size_t size);
//  Reads a bulk job's "filter" object: status, labels (an object of
//  strings), targetUrl, provider, flowControlKey, createdAfter,
//  createdBefore; messages name members as "filter.<name>" and an unknown
//  one is "Unknown field: filter.<name>". Returns NULL or the message.
const char *bk_task_filter_map (bk_task_filter_t *self, const aq_node_t *map, char *errbuf,
                                size_t size);
//  True when task matches all of the filter.
bool bk_task_filter_match (const bk_task_filter_t *self, const bk_task_t *task);

typedef struct _bk_task_query_t bk_task_query_t;

//  Plans filter (borrowed, with what it borrows, for the query's life)
//  over team's tasks in the current transaction. Caller destroys.
bk_task_query_t *bk_task_query_new (bk_store_t *store, const uint8_t team[16],
                                    const bk_task_filter_t *filter);
void bk_task_query_destroy (bk_task_query_t **self_p);

//  True, with *total, when the counters give how many tasks match (no
//  walk needed); false when only a walk can count them.
bool bk_task_query_counted (bk_task_query_t *self, uint64_t *total);

//  Called for each task matched, in order. task is its record when the
//  walk read it (borrowed until fn returns), else NULL. Returns 0 to go
//  on, non-zero to stop.
typedef int (bk_task_query_fn) (void *arg, uint64_t seq, const uint8_t id[16], bk_task_t *task);

#define BK_WALK_END    0 //  every match was seen
#define BK_WALK_STOP   1 //  fn stopped it
#define BK_WALK_BUDGET 2 //  the budget ran out first
//  Walks the matches whose seq is in [seq_min, seq_max], ascending or
//  descending, taking from *budget. Returns a BK_WALK_* code, or -1 on a
//  store error.
int bk_task_query_walk (bk_task_query_t *self, bool ascending, uint64_t seq_min, uint64_t seq_max,
                        int64_t *budget, bk_task_query_fn *fn, void *arg);

//  The seq of the last entry the last walk went past (matching or not; 0
//  when it went past none): an ascending walk stopped by its budget has
//  seen every entry up to it.
uint64_t bk_task_query_reached (bk_task_query_t *self);

//  One page of matches as GET /v1/tasks shows it, written to w: an array
//  of public tasks (newest first unless ascending). Sets *total and
//  *exact (false: *total is how many the budget let the walk count, a
//  lower bound) and *more (hasMore). Returns how many tasks it wrote.
size_t bk_task_query_page (bk_task_query_t *self, bool ascending, int64_t offset, int64_t limit,
                           int64_t budget, aq_writer_t *w, uint64_t *total, bool *exact,
                           bool *more);

//  The budget of one list request (units of task_filter.c): ~20 ms.
#define BK_QUERY_BUDGET 400000

void bk_task_filter_test (bool verbose);

#endif
