/*  plugin_tests.h - selftests of plugins/: X(name) where name_test exists.
    The loader's own, aq_plugin_loader, is listed with the broker's
    (broker/bk_tests.h), whose library holds it.
*/
// clang-format off
#define AQ_PLUGIN_TESTS(X) \
    X (aq_plugin_host)
// clang-format on
