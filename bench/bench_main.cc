// main() of the benchmarks: Arrow set up before they run and torn down after.
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"

int main(int argc, char** argv) { return teatree::bench::RunBenchmarks(argc, argv); }
