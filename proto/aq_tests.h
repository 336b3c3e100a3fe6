/*  aq_tests.h - selftests of proto/ modules: X(name) where name_test exists */
// clang-format off
#define AQ_PROTO_TESTS(X) \
    X (aq_proto)          \
    X (aq_codec)          \
    X (aq_time)           \
    X (aq_uuid)           \
    X (aq_config)         \
    X (aq_log)            \
    X (aq_notify)         \
    X (aq_client)         \
    X (aq_vectors)        \
    X (aq_curve)          \
    X (aq_secret)         \
    X (aq_msg)            \
    X (aq_json)           \
    X (aq_actor)
// clang-format on
