/*  bk_tests.h - selftests of broker/ modules: X(name) where name_test exists */
// clang-format off
#define BK_TESTS(X) \
    X (bk_store) X (bk_redo) X (bk_power) X (bk_arena) X (bk_trace) X (bk_task) X (bk_task_request) X (bk_backoff) \
    X (bk_queue) X (bk_flow) X (bk_delay) X (bk_lease) X (bk_waiters) X (bk_signing) X (aq_plugin_loader) \
    X (bk_poll) X (bk_zone) X (bk_cron) X (bk_rrule) X (bk_schedule) X (bk_sched_task) \
    X (bk_sched_run) X (bk_schedules) X (bk_runs) X (bk_scheduler) X (bk_zap) X (bk_sockets) X (bk_outbox) \
    X (bk_request) X (bk_limits) X (bk_minutes) X (bk_figures) X (bk_keys) X (bk_tokens) X (bk_admin) \
    X (bk_config) X (bk_tasks) X (bk_task_index) X (bk_task_filter) X (bk_bulk) \
    X (aq_provider_host) X (bk_providers) X (bk_upgrade_task) \
    X (bk_upgrade_v1) X (bk_sched_upgrade) X (bk_sched_upgrade_run) X (bk_upgrade) \
    X (bk_engine) X (bk_dispatch) X (bk_results) X (bk_jobs) X (bk_handlers)
// clang-format on
