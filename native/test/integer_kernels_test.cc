// integer_kernels_test.cc: placeholder, filled by the integer kernel work.
