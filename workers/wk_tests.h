/*  wk_tests.h - selftests of workers/ modules: X(name) where name_test exists */
#define WK_TESTS(X)                                                                                \
    X (wk_ssrf) X (wk_text) X (wk_job) X (wk_results) X (wk_poller) X (wk_callout) X (wk_worker)
