//! A scan that reads its sources only for rows that can still reach the answer.
//!
//! While a query runs, some operators learn which rows can no longer matter and publish
//! that as a *dynamic filter*: a TopK (`ORDER BY … LIMIT`) its current threshold, a hash
//! join the bounds of its keys. DataFusion offers these filters to the scans below. A
//! scan of `spans.attributes` parses every span it lets through again from its source, so
//! it takes them: they are applied to the index's span columns before a slice is read, and
//! `ORDER BY duration_ms DESC LIMIT 10` parses a few slices' worth of spans instead of all.
//!
//! The filters are hints. The operator that published one still applies it to what the scan
//! gives, so the scan reports it as not pushed down and is free to take only those it can
//! evaluate on span columns.
//!
//! A filter that reached the scan through a join other than the one that made it is
//! dropped again once the plan is final ([`DropFiltersAcrossJoins`]): DataFusion 55 maps a
//! filter's columns by name on the way down, and a join's output can hold two columns of
//! that name (`t.duration_ms`, `s.duration_ms`), so a TopK threshold on the traces' column
//! arrived as one on the spans' and dropped rows the answer needed.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr};
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::TryStreamExt;

/// Makes a scan's partitions, given the dynamic filters (planned against the spans schema
/// of the index) that they should apply before reading a slice's source.
pub(crate) type MakePartitions =
    Arc<dyn Fn(&[Arc<dyn PhysicalExpr>]) -> Vec<Arc<dyn PartitionStream>> + Send + Sync>;

/// A scan over slices that takes the dynamic filters of the operators above it.
pub(crate) struct DynamicFilterScan {
    /// The scan as it runs: partitions made with `filters`.
    inner: Arc<dyn ExecutionPlan>,
    recipe: Arc<Recipe>,
    /// The dynamic filters taken so far, their columns those of `Recipe::evaluated_on`.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// `rows_read`: the rows that passed every filter and were read back from the source
    /// (shown by `EXPLAIN ANALYZE`).
    metrics: ExecutionPlanMetricsSet,
}

/// What a scan is made from, whatever filters it applies.
struct Recipe {
    make: MakePartitions,
    /// The schema the partitions produce, before `projection`.
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    /// The schema the filters are evaluated against (the index's span columns).
    evaluated_on: SchemaRef,
    /// Whether a column of the scan's schema holds the same values under the same name in
    /// `evaluated_on`, so that a filter on it may be evaluated there.
    same_in_spans: fn(&str) -> bool,
}

impl DynamicFilterScan {
    /// The scan of `make`'s partitions (none of them filtered yet), projected and limited.
    pub(crate) fn try_new(
        schema: SchemaRef,
        make: MakePartitions,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
        evaluated_on: SchemaRef,
        same_in_spans: fn(&str) -> bool,
    ) -> DfResult<DynamicFilterScan> {
        let recipe = Recipe {
            make,
            schema,
            projection: projection.cloned(),
            limit,
            evaluated_on,
            same_in_spans,
        };
        Self::made(Arc::new(recipe), Vec::new())
    }

    /// The same scan applying `filters`.
    fn with_filters(&self, filters: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<DynamicFilterScan> {
        Self::made(self.recipe.clone(), filters)
    }

    fn made(recipe: Arc<Recipe>, filters: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Self> {
        let inner = crate::slices::unordered_scan(
            recipe.schema.clone(),
            (recipe.make)(&filters),
            recipe.projection.as_ref(),
            recipe.limit,
        )?;
        Ok(DynamicFilterScan {
            inner,
            recipe,
            filters,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// `filter` with its columns found in `Recipe::evaluated_on`, if it is a dynamic filter
    /// over plain columns that mean the same there. Over expressions (`ORDER BY
    /// CAST(name AS BIGINT)`, `ORDER BY random()`) it is not taken: the scan applies it
    /// before the query's own filters on `attributes`, to rows the expression may fail on
    /// or give other values for.
    fn evaluable(&self, filter: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        // Static filters reached the scan already, as the table provider's filters.
        let dynamic = filter.downcast_ref::<DynamicFilterPhysicalExpr>()?;
        if !dynamic
            .children()
            .iter()
            .all(|c| c.downcast_ref::<Column>().is_some())
        {
            return None;
        }
        let on: &Schema = &self.recipe.evaluated_on;
        let columns = collect_columns(filter);
        if !columns
            .iter()
            .all(|c| (self.recipe.same_in_spans)(c.name()) && on.index_of(c.name()).is_ok())
        {
            return None;
        }
        reassign_expr_columns(filter.clone(), on).ok()
    }
}

impl fmt::Debug for DynamicFilterScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicFilterScan")
            .field("filters", &self.filters)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for DynamicFilterScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamicFilterScan: dynamic_filters=[")?;
        for (i, filter) in self.filters.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{filter}")?;
        }
        write!(f, "], ")?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for DynamicFilterScan {
    fn name(&self) -> &str {
        "DynamicFilterScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        for filter in &self.filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            datafusion::common::internal_err!("a scan has no children to replace")
        }
    }

    /// The filters taken belong to the operators of this run; a plan run again (a recursive
    /// query's step) gets new ones from them, so the old ones, which no longer change, go.
    fn reset_state(self: Arc<Self>) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.filters.is_empty() {
            return Ok(self);
        }
        Ok(Arc::new(self.with_filters(Vec::new())?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let rows_read = MetricBuilder::new(&self.metrics).counter("rows_read", partition);
        let stream = self.inner.execute(partition, context)?;
        let schema = stream.schema();
        let counted = stream.inspect_ok(move |batch| rows_read.add(batch.num_rows()));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, counted)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered = child_pushdown_result.parent_filters;
        // Every filter stays with the operator that offered it: the scan only skips rows it
        // would reject anyway.
        let answer = FilterPushdownPropagation::with_parent_pushdown_result(vec![
            PushedDown::No;
            offered.len()
        ]);
        if phase != FilterPushdownPhase::Post {
            return Ok(answer);
        }
        let taken: Vec<Arc<dyn PhysicalExpr>> = offered
            .iter()
            .filter_map(|f| self.evaluable(&f.filter))
            .collect();
        if taken.is_empty() {
            return Ok(answer);
        }
        let filters = self.filters.iter().cloned().chain(taken).collect();
        Ok(answer.with_updated_node(Arc::new(self.with_filters(filters)?)))
    }
}

/// The rule that drops, from every [`DynamicFilterScan`], the dynamic filters that crossed a
/// join on their way from the operator that made them (see the module's docs). A join's
/// own filter, pushed to its side, stays. It runs after DataFusion's own rules.
#[derive(Debug)]
pub(crate) struct DropFiltersAcrossJoins;

impl PhysicalOptimizerRule for DropFiltersAcrossJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        drop_across_joins(plan, &mut Vec::new())
    }

    fn name(&self) -> &str {
        "halo_drop_dynamic_filters_across_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the filters of its scans that crossed a join dropped; `above` holds the
/// operators above `plan`, the nearest last.
fn drop_across_joins(
    plan: Arc<dyn ExecutionPlan>,
    above: &mut Vec<Arc<dyn ExecutionPlan>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let node: &dyn std::any::Any = plan.as_ref();
    if let Some(scan) = node.downcast_ref::<DynamicFilterScan>() {
        let kept: Vec<Arc<dyn PhysicalExpr>> = scan
            .filters
            .iter()
            .filter(|f| came_through_no_other_join(f, above))
            .cloned()
            .collect();
        if kept.len() == scan.filters.len() {
            return Ok(plan);
        }
        return Ok(Arc::new(scan.with_filters(kept)?));
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    above.push(plan.clone());
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for child in children {
        let new = drop_across_joins(child.clone(), above)?;
        changed |= !Arc::ptr_eq(&new, &child);
        new_children.push(new);
    }
    above.pop();
    if !changed {
        return Ok(plan);
    }
    // A scan with fewer filters has the same properties.
    plan.replace_children(
        new_children,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
    )
}

/// Whether the operator that made `filter` is reached from the scan, going up through
/// `above`, before any join that did not make it. A filter whose maker is not found is
/// not trusted either.
fn came_through_no_other_join(
    filter: &Arc<dyn PhysicalExpr>,
    above: &[Arc<dyn ExecutionPlan>],
) -> bool {
    let Some(id) = filter.expression_id() else {
        return false;
    };
    for node in above.iter().rev() {
        let made_it = node
            .dynamic_expressions_produced()
            .iter()
            .any(|e| e.expression_id() == Some(id));
        if made_it {
            return true;
        }
        if node.name().contains("Join") {
            return false;
        }
    }
    false
}
