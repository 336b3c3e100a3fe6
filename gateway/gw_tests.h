/*  gw_tests.h - selftests of gateway/ modules: X(name) where name_test exists */
#define GW_TESTS(X)
