/*  wk_tests.h - selftests of workers/ modules: X(name) where name_test exists */
#define WK_TESTS(X)
