//! Where a request meets the budgets: charging an attempt's cost (and announcing a threshold
//! it crossed as a `Budget` route event), and refusing a request once `llmux.budget` is used
//! up. The candidate filter itself asks [`super::Budgets::over_deployment`] directly.

use super::{APP_SCOPE, short_duration};
use crate::config::Deployment;
use crate::metrics::Usd;
use crate::router::event::{RouteError, RouteErrorKind, RouteEventKind};
use crate::router::request::RequestRun;

impl RequestRun {
    /// Counts what an attempt on `d` cost against its budgets (nothing for an unknown price).
    pub(in crate::router) async fn charge_budgets(
        &self,
        group: &str,
        d: &Deployment,
        cost: Option<Usd>,
    ) {
        let Some(cost) = cost else { return };
        for c in self.inner.budgets.spend(&d.id, cost) {
            let kind = RouteEventKind::Budget {
                scope: c.scope,
                spent: c.spent,
                limit: c.limit,
                percent: c.percent,
                period: c.period,
                resets_in_ms: c.resets_in.map(|r| r.as_millis() as u64),
            };
            self.emit(group, Some(&d.id), kind).await;
        }
    }

    /// The request's error when `llmux.budget` is used up. Waits first, at start only, for
    /// the budgets' spend to be read back from the request log.
    pub(in crate::router) async fn check_app_budget(&self) -> Result<(), RouteError> {
        self.inner.budgets.ready().await;
        let Some(over) = self.inner.budgets.over_app() else {
            return Ok(());
        };
        Err(RouteError {
            request_id: self.id,
            kind: RouteErrorKind::OverBudget,
            message: format!(
                "{APP_SCOPE} is used up: {} of {} for {}; every request is refused until it \
                 resets in {} (raise {APP_SCOPE}.limit in the config to go on now)",
                over.spent,
                over.limit,
                over.period,
                short_duration(over.resets_in)
            ),
            attempts: self.attempts.clone(),
            retry_in: Some(over.resets_in),
            partial_text: String::new(),
        })
    }
}
