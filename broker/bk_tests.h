/*  bk_tests.h - selftests of broker/ modules: X(name) where name_test exists */
// clang-format off
#define BK_TESTS(X) \
    X (bk_store) X (bk_redo) X (bk_task) X (bk_backoff) X (bk_keys) X (bk_queue) X (bk_delay) \
    X (bk_tasks) X (bk_lease) X (bk_waiters) X (bk_signing) X (bk_limits) \
    X (aq_plugin_loader) X (aq_provider_host) X (bk_providers) X (bk_tokens) X (bk_poll) \
    X (bk_cron) X (bk_rrule) X (bk_zone) X (bk_schedule) X (bk_schedules) X (bk_sched_task) \
    X (bk_zap) X (bk_sockets) X (bk_arena)
// clang-format on
