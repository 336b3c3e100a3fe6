/*  gw_tests.h - selftests of gateway/ modules: X(name) where name_test exists */
#define GW_TESTS(X)                                                                                \
    X (gw_lexer)                                                                                   \
    X (gw_json)                                                                                    \
    X (gw_query)                                                                                   \
    X (gw_response) X (gw_routes) X (gw_ui) X (gw_metrics) X (gw_listen) X (gw_http) X (gw_gateway)
