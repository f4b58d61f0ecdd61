// A plugin built for another registration ABI: the server must refuse it before calling it.
#include <vector>

namespace teatree {
struct ModelFunction;
}  // namespace teatree

extern "C" int teatree_plugin_abi_version() { return 999; }
extern "C" void teatree_plugin_functions(std::vector<teatree::ModelFunction>* /*out*/) {}
