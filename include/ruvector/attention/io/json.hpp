#pragma once
/// \file io/json.hpp
/// \brief JSON output (nlohmann_json): the only header of the library that includes
/// `<nlohmann/json.hpp>`. ADL `to_json` overloads for the unified report's types.
///
/// A report serialises as
/// `{"num_keys", "num_queries", "dim", "health_score", "metrics": [{"name", "value", "status"}],
///   "recommendation": {"mechanism", "temperature_factor", "reasons": [...]}, "raw": {...}}`;
/// NaN raw values (not measured) become `null`, infinities the strings "inf"/"-inf".

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "ruvector/attention/unified_report/report.hpp"

namespace ruvector::attention {

namespace detail {

inline nlohmann::json json_number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace detail

/// \brief ADL hook: one metric.
inline void to_json(nlohmann::json& j, const metric_value& m) {
  j = nlohmann::json{{"name", std::string(metric_name(m.kind))},
                     {"value", detail::json_number(m.value)},
                     {"status", std::string(status_name(m.status))}};
}

/// \brief ADL hook: a recommendation.
inline void to_json(nlohmann::json& j, const recommendation& r) {
  j = nlohmann::json{{"mechanism", std::string(mechanism_name(r.mechanism))},
                     {"temperature_factor", r.temperature_factor},
                     {"reasons", r.reasons}};
}

/// \brief ADL hook: a whole report.
inline void to_json(nlohmann::json& j, const geometry_report& r) {
  j = nlohmann::json{{"num_keys", r.num_keys},
                     {"num_queries", r.num_queries},
                     {"dim", r.dim},
                     {"health_score", r.health_score},
                     {"metrics", r.metrics},
                     {"recommendation", r.advice},
                     {"raw",
                      {{"ot_distance", detail::json_number(r.ot_distance)},
                       {"entropy_nats", detail::json_number(r.entropy_nats)},
                       {"logit_std", detail::json_number(r.logit_std)},
                       {"h0_total_persistence", detail::json_number(r.h0_total_persistence)}}}};
}

/// \brief The report as a JSON string (`indent` < 0: compact).
[[nodiscard]] inline std::string to_json_string(const geometry_report& r, int indent = 2) {
  return nlohmann::json(r).dump(indent);
}

}  // namespace ruvector::attention
