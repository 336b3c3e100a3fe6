/*  plugin_tests.h - selftests of plugins/ and of each shipped plugin (in its
    folder, linked into aq-selftest only): X(name) where name_test exists.
    The loader's own, aq_plugin_loader, is listed with the broker's
    (broker/bk_tests.h), whose library holds it.
*/
// clang-format off
#define AQ_PLUGIN_TESTS(X) \
    X (aq_plugin_host) X (aq_plugin_fal) X (aq_plugin_replicate) X (aq_plugin_example) \
    X (aq_plugin_vault_sodium)
// clang-format on
