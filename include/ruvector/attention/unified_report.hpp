#pragma once
/// \file unified_report.hpp
/// \brief Entry header of the unified geometry report: structural metrics, bands, the report and
/// its recommendation (JSON output: `ruvector/attention/io/json.hpp`).

#include "ruvector/attention/unified_report/metrics.hpp"
#include "ruvector/attention/unified_report/recommendation.hpp"
#include "ruvector/attention/unified_report/report.hpp"
#include "ruvector/attention/unified_report/structure.hpp"
