// main() of every GoogleTest executable: Arrow set up before the tests, torn down after.
#include <gtest/gtest.h>

#include "teatree/common/arrow_runtime.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (auto status = teatree::InitializeArrow(); !status.ok()) {
    fprintf(stderr, "cannot initialize Arrow: %s\n", status.ToString().c_str());
    return 1;
  }
  int result = RUN_ALL_TESTS();
  teatree::ShutdownArrow();
  return result;
}
