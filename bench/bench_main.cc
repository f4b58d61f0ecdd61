// main() of the benchmarks: Arrow set up before they run and torn down after.
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "teatree/common/arrow_runtime.h"

int main(int argc, char** argv) {
  teatree::bench::OrDie(teatree::InitializeArrow());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  teatree::ShutdownArrow();
  return 0;
}
