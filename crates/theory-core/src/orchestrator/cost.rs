//! What a run is expected to cost (admission reserves it on `--plan`) and what it did cost
//! (settlement charges it, the receipt records it). Mock runs cost nothing.
//!
//! - Estimate: the `required_usd_micro` of the spec's `budget.available@1` admission predicate,
//!   else the spec's `pricing.estimate_usage` priced, else 0.
//! - Actual: `usage.cost_usd_micro` when the processor reports it, else the reported usage priced
//!   by the spec's `pricing` (the row of `pricing.models` for `usage.model`, else
//!   `usd_micro_per`), else unknown (settlement then charges a success its estimate).

use serde_json::{Map, Value};
use theory_protocol::Mode;

use crate::registry::{PricingSpec, ProcessorSpec};

/// The usage key a processor reports its own cost under.
const REPORTED_COST_KEY: &str = "cost_usd_micro";
/// The usage key naming the model a run used: it picks the row of `pricing.models`.
const MODEL_KEY: &str = "model";

/// What admission reserves for a run of `spec` in `mode`.
pub(super) fn estimate(spec: &ProcessorSpec, mode: Mode) -> u64 {
    if mode == Mode::Mock {
        return 0;
    }
    spec.predicates
        .admission
        .iter()
        .find(|predicate| predicate.id == "budget.available@1")
        .and_then(|predicate| predicate.args.get("required_usd_micro"))
        .and_then(Value::as_u64)
        .or_else(|| spec.pricing.as_ref().and_then(PricingSpec::estimate_usd_micro))
        .unwrap_or(0)
}

/// What a run of `spec` in `mode` that reported `usage` cost, when it is known.
pub(super) fn actual(
    spec: &ProcessorSpec,
    mode: Mode,
    usage: Option<&Map<String, Value>>,
) -> Option<u64> {
    if mode == Mode::Mock {
        return Some(0);
    }
    let usage = usage?;
    if let Some(reported) = usage.get(REPORTED_COST_KEY).and_then(Value::as_u64) {
        return Some(reported);
    }
    let units = usage.iter().filter_map(|(key, value)| Some((key, value.as_u64()?)));
    let pricing = spec.pricing.as_ref()?;
    let model = usage.get(MODEL_KEY).and_then(Value::as_str);
    PricingSpec::cost_at(pricing.prices_for(model), units)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use theory_protocol::Mode;

    use super::{actual, estimate};
    use crate::registry::ProcessorSpec;

    fn spec(extra: &str) -> ProcessorSpec {
        serde_saphyr::from_str(&format!("ref: a/b@1\n{extra}")).unwrap()
    }

    #[test]
    fn the_predicate_argument_wins_then_the_priced_estimate_and_mock_is_free() {
        let pricing = "pricing:\n  usd_micro_per: {tokens_in: 0.5, tokens_out: 2}\n  estimate_usage: {tokens_in: 1000, tokens_out: 101}\n";
        let priced = spec(pricing);
        assert_eq!(estimate(&priced, Mode::Real), 702);
        assert_eq!(estimate(&priced, Mode::Mock), 0);
        let both = spec(&format!(
            "{pricing}predicates:\n  admission: [{{id: budget.available@1, args: {{required_usd_micro: 9}}}}]\n"
        ));
        assert_eq!(estimate(&both, Mode::Real), 9);
        assert_eq!(estimate(&spec(""), Mode::Real), 0);
    }

    #[test]
    fn a_reported_cost_wins_then_usage_priced_rounded_up() {
        let priced = spec("pricing:\n  usd_micro_per: {tokens_in: 0.15, tokens_out: 0.6}\n");
        let usage = json!({"tokens_in": 10, "tokens_out": 3, "model": "x"});
        let usage = usage.as_object();
        // 1.5 + 1.8 = 3.3 → 4.
        assert_eq!(actual(&priced, Mode::Real, usage), Some(4));
        let reported = json!({"tokens_in": 10, "cost_usd_micro": 77});
        assert_eq!(actual(&priced, Mode::Real, reported.as_object()), Some(77));
        assert_eq!(actual(&spec(""), Mode::Real, usage), None);
        let unpriced = json!({"images": 2});
        assert_eq!(actual(&priced, Mode::Real, unpriced.as_object()), None);
        assert_eq!(actual(&priced, Mode::Mock, usage), Some(0));
        assert_eq!(actual(&priced, Mode::Real, None), None);
    }

    #[test]
    fn the_model_a_run_used_picks_its_prices() {
        let priced = spec(
            "pricing:\n  models:\n    openai/gpt-4o-mini: {tokens_in: 0.15, tokens_out: 0.6}\n    anthropic/claude-3-5-haiku-latest: {tokens_in: 0.8, tokens_out: 4}\n",
        );
        let usage = |model: &str| json!({"tokens_in": 1000, "tokens_out": 100, "model": model});
        let cost = |model: &str| actual(&priced, Mode::Real, usage(model).as_object());
        assert_eq!(cost("openai/gpt-4o-mini"), Some(210));
        assert_eq!(cost("anthropic/claude-3-5-haiku-latest"), Some(1200));
        // A model without a row, and no default prices: the cost is unknown (settlement charges
        // the estimate).
        assert_eq!(cost("groq/unknown"), None);
    }
}
