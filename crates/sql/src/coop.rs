//! Yield points above the operators that can produce rows without end from little input
//! (joins, unnest), so that a query's time limit can always cancel it.
//!
//! DataFusion makes its sources and exchanges cooperative; a nested-loop join over in-memory
//! tables can still emit millions of batches into an aggregate inside one poll, never giving
//! the runtime a chance to fire the timeout. Wrapping such operators in DataFusion's own
//! `CooperativeExec` (one unit of the task's budget per batch) fixes that.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::ExecutionPlan;

/// Operators whose output can dwarf their input.
const MULTIPLYING: &[&str] = &[
    "NestedLoopJoinExec",
    "CrossJoinExec",
    "HashJoinExec",
    "SortMergeJoinExec",
    "SymmetricHashJoinExec",
    "UnnestExec",
];

/// The rule; it runs after DataFusion's own rules.
#[derive(Debug)]
pub(crate) struct YieldAfterJoins;

impl PhysicalOptimizerRule for YieldAfterJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if MULTIPLYING.contains(&node.name()) {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "halo_yield_after_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
