#pragma once

// The request module: the one codec for client requests, and the types it speaks (names,
// column types, table schemas, expressions) with their conversions to Arrow.
#include "teatree/request/codec.h"
#include "teatree/request/column_type.h"
#include "teatree/request/expression.h"
#include "teatree/request/names.h"
#include "teatree/request/request.h"
#include "teatree/request/rows_to_arrow.h"
#include "teatree/request/table_schema.h"
