#pragma once

// The registration ABI of function plugins: a shared library loaded with `--plugin libx.so`
// defines its functions with TEATREE_PLUGIN. A plugin is built against the same Teatree
// headers and Arrow version as the server; the server checks kPluginAbiVersion before it
// registers anything. A plugin uses only header-only parts of Teatree (ModelFunction,
// FunctionContext, StepRecorder, Status) and Arrow, so it needs no Teatree library to link.

#include <vector>

#include "teatree/functions/function_registry.h"

namespace teatree {

/// Changes whenever ModelFunction, FunctionContext or the entry points below change.
inline constexpr int kPluginAbiVersion = 1;

/// The entry points' names, as the server looks them up.
inline constexpr const char* kPluginAbiSymbol = "teatree_plugin_abi_version";
inline constexpr const char* kPluginFunctionsSymbol = "teatree_plugin_functions";

}  // namespace teatree

/// Defines a plugin's entry points; `functions` is a function returning
/// std::vector<teatree::ModelFunction>, each with a `native` body (or SQL).
#define TEATREE_PLUGIN(functions)                                                      \
  extern "C" int teatree_plugin_abi_version() { return teatree::kPluginAbiVersion; }   \
  extern "C" void teatree_plugin_functions(std::vector<teatree::ModelFunction>* out) { \
    *out = functions();                                                                \
  }
