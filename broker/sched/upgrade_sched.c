/*  upgrade_sched.c - the scheduler's records from layout 1 to layout 2

    A stub until the scheduler's typed records land (broker/sched/): every
    record is left as it is, so a layout-1 store that holds scheduled tasks
    or runs stays at layout 1 and keeps them for the build that converts
    them. The scheduler module replaces this file.
*/
#include "upgrade_sched.h"

int bk_sched_upgrade_record (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                             const aq_node_t *v1, aq_writer_t *w, char *why, size_t why_size) {
    return BK_SCHED_UPGRADE_LEFT;
}
