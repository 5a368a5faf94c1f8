/* keeps the support library non-empty */
int nmc_test_support_empty_unit;
