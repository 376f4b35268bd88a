// q_gemm_bench.cc: placeholder.
int main() { return 0; }
