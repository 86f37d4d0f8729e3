//! Streaming planner: lowers DataFusion's physical plan of a query to a
//! [`Pipeline`] of streaming operators.
//!
//! DataFusion parses, resolves, type-checks and optimises the query. The
//! physical plan of a streaming query is a single path:
//!
//! ```text
//! [ProjectionExec / FilterExec]*          ← post steps (HAVING, final SELECT)
//! AggregateExec (Final)?                  ← output schema
//! AggregateExec (Single | Partial)        ← group keys, aggregates, filters
//! [ProjectionExec / FilterExec]*          ← pre steps (WHERE, expressions)
//! StreamScanExec                          ← stream + window table function (TUMBLE, HOP, CUMULATE)
//! ```
//!
//! We take the expressions out of each node and never execute the plan.
//! Anything else (sorts, limits, joins, OVER windows) cannot run
//! incrementally yet and fails here with a message that says what to write.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::err;
use crate::error::Result;
use crate::ops::chain::{StatelessChain, Step};
use crate::ops::changelog::with_op_column;
use crate::ops::grouped_aggregates::AggregateSpec;
pub use crate::ops::pipeline::LatePolicy;
use crate::ops::pipeline::{ChangelogOperator, Pipeline, Stage, WindowOperator};
use crate::ops::refining_window_aggregate::{RefiningWindowAggregate, RefiningWindowConfig};
use crate::ops::scan::StreamScan;
use crate::ops::session_aggregate::{SessionAggregate, SessionAggregateConfig};
use crate::ops::updating_aggregate::{UpdatingAggregate, UpdatingAggregateConfig};
use crate::ops::window_aggregate::{GroupColumn, WindowAggregate, WindowAggregateConfig};
use crate::sql::stream_table::StreamScanExec;
use crate::time::emit::EmitMode;
use crate::time::window::WindowSpec;

/// A lowered query: the stream it reads and its operators.
#[derive(Debug)]
pub struct StreamingPlan {
    /// Name of the stream the query reads.
    pub stream: String,
    /// The operators.
    pub pipeline: Pipeline,
}

/// Nodes that only move batches around; with one partition they are no-ops.
const PASS_THROUGH: &[&str] = &[
    "CoalesceBatchesExec",
    "CoalescePartitionsExec",
    "RepartitionExec",
    "CooperativeExec",
];

/// Per-query choices that SQL does not express.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// For GROUP BY without a window: forget a group once the watermark is
    /// this many milliseconds past its last update (emitted as a delete).
    pub state_ttl_millis: Option<i64>,
    /// What window queries do with late rows.
    pub late: LatePolicy,
    /// How long after a window closes late rows still update it (emitted
    /// as a changelog). Zero: closed windows are final.
    pub allowed_lateness_millis: i64,
}

/// Lowers a physical plan to streaming operators.
pub fn lower(
    plan: &Arc<dyn ExecutionPlan>,
    options: &QueryOptions,
    emit: Option<EmitMode>,
) -> Result<StreamingPlan> {
    // The path from the root to the leaf, top first.
    let mut path: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let mut node = Arc::clone(plan);
    loop {
        let children: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
        match children.len() {
            0 => break,
            1 => {
                path.push(node);
                node = Arc::clone(&children[0]);
            }
            _ => return Err(unsupported_node(node.as_ref())),
        }
    }
    let Some(scan) = (*node).downcast_ref::<StreamScanExec>() else {
        return Err(err!(
            Unsupported,
            "the query reads no stream ({}); select FROM a stream or FROM TUMBLE(stream, ts, INTERVAL '1' MINUTE)",
            node.name()
        ));
    };

    let aggregate_at: Vec<usize> = path
        .iter()
        .enumerate()
        .filter(|(_, n)| n.as_ref().downcast_ref::<AggregateExec>().is_some())
        .map(|(i, _)| i)
        .collect();
    let stream_scan = stream_scan(scan);
    let unit = scan.stream().event_time_unit;
    let output_schema = plan.schema();

    let Some((&top_at, &bottom_at)) = aggregate_at.first().zip(aggregate_at.last()) else {
        if let Some(window) = scan.window().filter(|w| !w.is_tumbling()) {
            return Err(err!(
                Unsupported,
                "{} without GROUP BY would repeat each row once per window; aggregate with GROUP BY window_start, window_end",
                window.name()
            ));
        }
        let pre = steps(&path)?;
        return Ok(StreamingPlan {
            stream: scan.stream().name.clone(),
            pipeline: Pipeline::new(stream_scan, pre, Stage::Stateless, output_schema, unit),
        });
    };
    let top = path[top_at]
        .as_ref()
        .downcast_ref::<AggregateExec>()
        .expect("found above");
    let bottom = path[bottom_at]
        .as_ref()
        .downcast_ref::<AggregateExec>()
        .expect("found above");
    let two_phase = top_at != bottom_at;
    let phases_ok = if two_phase {
        aggregate_at.len() == 2
            && matches!(
                top.mode(),
                AggregateMode::Final | AggregateMode::FinalPartitioned
            )
            && matches!(bottom.mode(), AggregateMode::Partial)
    } else {
        matches!(
            bottom.mode(),
            AggregateMode::Single | AggregateMode::SinglePartitioned
        )
    };
    if !phases_ok {
        return Err(err!(
            Unsupported,
            "nested aggregation (an aggregate over an aggregate) cannot run on a stream yet"
        ));
    }
    let post = steps(&path[..top_at])?;
    if two_phase
        && !path[top_at + 1..bottom_at]
            .iter()
            .all(|n| PASS_THROUGH.contains(&n.name()))
    {
        return Err(err!(
            Internal,
            "unexpected plan between partial and final aggregation"
        ));
    }
    // A sort under the aggregate only serves ordered aggregates
    // (first_value(x ORDER BY ts), array_agg(... ORDER BY ...)). Stream input
    // is never sorted, so drop it and let those aggregates order internally.
    let mut below = &path[bottom_at + 1..];
    while let Some((node, rest)) = below.split_first() {
        if node.name() == "SortExec" {
            below = rest;
            break;
        }
        if !PASS_THROUGH.contains(&node.name()) {
            break;
        }
        below = rest;
    }
    let pre = steps(below)?;

    let window = scan.window();
    let group_by = bottom.group_expr();
    if group_by.has_grouping_set() {
        return Err(err!(
            Unsupported,
            "GROUPING SETS, ROLLUP and CUBE are not supported on streams yet"
        ));
    }
    let input_schema = bottom.input_schema();
    let stream_width = scan.stream().schema.fields().len();
    let mut group_columns = Vec::new();
    let mut slice_bound = None;
    let mut keys = Vec::new();
    let mut key_fields = Vec::new();
    for (expr, name) in group_by.expr() {
        let traced = expr
            .downcast_ref::<Column>()
            .and_then(|c| leaf_window_column(c.index(), pre.steps(), scan, stream_width));
        match traced {
            Some(column) => {
                group_columns.push(column);
                if slice_bound.is_none() || column == GroupColumn::WindowStart {
                    slice_bound = Some((Arc::clone(expr), column));
                }
            }
            None => {
                group_columns.push(GroupColumn::Key(keys.len()));
                key_fields.push(Field::new(
                    name,
                    expr.data_type(&input_schema)?,
                    expr.nullable(&input_schema)?,
                ));
                keys.push(Arc::clone(expr));
            }
        }
    }
    let arguments = aggregate_expressions(bottom.aggr_expr(), bottom.mode(), 0)?;
    let Some(window) = window else {
        // No window: an updating aggregate with a changelog.
        let spec = AggregateSpec::new(
            keys,
            Arc::new(Schema::new(key_fields)),
            unordered_input(bottom.aggr_expr())?,
            arguments,
            bottom.filter_expr().to_vec(),
        );
        let ttl = options
            .state_ttl_millis
            .map(|ms| crate::ops::source::millis_to_ticks(ms, unit));
        let aggregate = UpdatingAggregate::try_new(UpdatingAggregateConfig {
            spec,
            output_schema: top.schema(),
            ttl,
        })?;
        return Ok(StreamingPlan {
            stream: scan.stream().name.clone(),
            pipeline: Pipeline::new(
                stream_scan,
                pre,
                Stage::Updating {
                    aggregate: Box::new(ChangelogOperator::Groups(Box::new(aggregate))),
                    post,
                },
                with_op_column(&output_schema),
                unit,
            ),
        });
    };
    let Some(slice_bound) = slice_bound else {
        return Err(err!(
            Unsupported,
            "a {} query must GROUP BY window_start (and window_end): without a window in the key, groups would never close",
            window.name()
        ));
    };
    if !window.is_tumbling() {
        // Rows carry their slice, not their (several) windows: the window
        // columns may only be passed through to the GROUP BY.
        let filters = bottom.filter_expr().iter().flatten();
        for expr in arguments.iter().flatten().chain(filters) {
            reject_window_reference(
                expr.as_ref(),
                pre.steps(),
                scan,
                stream_width,
                window.name(),
            )?;
        }
        for (level, step) in pre.steps().iter().enumerate() {
            let below = &pre.steps()[..level];
            let exprs: Vec<&Arc<dyn PhysicalExpr>> = match step {
                Step::Filter { predicate, .. } => vec![predicate],
                Step::Project { exprs, .. } => exprs
                    .iter()
                    .filter(|e| e.downcast_ref::<Column>().is_none())
                    .collect(),
            };
            for expr in exprs {
                reject_window_reference(expr.as_ref(), below, scan, stream_width, window.name())?;
            }
        }
    }
    let aggregates = unordered_input(bottom.aggr_expr())?;
    let spec = AggregateSpec::new(
        keys,
        Arc::new(Schema::new(key_fields)),
        aggregates,
        arguments,
        bottom.filter_expr().to_vec(),
    );
    let time_type = scan.stream().window_type();
    let refine = matches!(emit, Some(EmitMode::OnUpdate | EmitMode::Every { .. }))
        || options.allowed_lateness_millis > 0;
    if refine {
        if options.allowed_lateness_millis < 0 {
            return Err(err!(InvalidInput, "allowed lateness must not be negative"));
        }
        let allowed_lateness =
            crate::ops::source::millis_to_ticks(options.allowed_lateness_millis, unit);
        let emit = emit.unwrap_or(EmitMode::OnWindowClose);
        let operator = if let WindowSpec::Session(session) = window {
            ChangelogOperator::Sessions(Box::new(SessionAggregate::try_new(
                SessionAggregateConfig {
                    window: session,
                    row_bound: slice_bound,
                    group_columns,
                    spec,
                    output_schema: top.schema(),
                    time_type,
                    emit,
                    allowed_lateness,
                },
            )?))
        } else {
            let grid = window
                .slices()
                .ok_or_else(|| err!(Internal, "{} has no slice grid", window.name()))?;
            ChangelogOperator::Windows(Box::new(RefiningWindowAggregate::try_new(
                RefiningWindowConfig {
                    window,
                    grid,
                    slice_bound,
                    group_columns,
                    spec,
                    output_schema: top.schema(),
                    time_type,
                    emit,
                    allowed_lateness,
                },
            )?))
        };
        return Ok(StreamingPlan {
            stream: scan.stream().name.clone(),
            pipeline: Pipeline::new(
                stream_scan,
                pre,
                Stage::Updating {
                    aggregate: Box::new(operator),
                    post,
                },
                with_op_column(&output_schema),
                unit,
            )
            .with_late_policy(options.late),
        });
    }
    let operator = match window {
        WindowSpec::Session(session) => {
            WindowOperator::Session(SessionAggregate::try_new(SessionAggregateConfig {
                window: session,
                row_bound: slice_bound,
                group_columns,
                spec,
                output_schema: top.schema(),
                time_type,
                emit: EmitMode::OnWindowClose,
                allowed_lateness: 0,
            })?)
        }
        sliced => {
            let grid = sliced
                .slices()
                .ok_or_else(|| err!(Internal, "{} has no slice grid", sliced.name()))?;
            WindowOperator::Sliced(WindowAggregate::new(WindowAggregateConfig {
                window: sliced,
                grid,
                slice_bound,
                group_columns,
                spec,
                output_schema: top.schema(),
                time_type,
            }))
        }
    };
    Ok(StreamingPlan {
        stream: scan.stream().name.clone(),
        pipeline: Pipeline::new(
            stream_scan,
            pre,
            Stage::Window {
                aggregate: Box::new(operator),
                post,
            },
            output_schema,
            unit,
        )
        .with_late_policy(options.late),
    })
}

/// Ordered aggregates (`ORDER BY` inside the call) rebuilt to expect
/// unsorted input: stream rows arrive in arrival order, never sorted.
fn unordered_input(
    aggregates: &[Arc<AggregateFunctionExpr>],
) -> Result<Vec<Arc<AggregateFunctionExpr>>> {
    aggregates
        .iter()
        .map(|aggregate| {
            // WITHIN GROUP (ORDER BY x) names the value, not an input order.
            if aggregate.order_bys().is_empty() || aggregate.fun().supports_within_group_clause() {
                return Ok(Arc::clone(aggregate));
            }
            if aggregate.order_sensitivity().hard_requires() {
                return Err(err!(
                    Unsupported,
                    "{} needs its input sorted, which a stream cannot provide",
                    aggregate.name()
                ));
            }
            match Arc::clone(aggregate).with_beneficial_ordering(false)? {
                Some(unordered) => Ok(Arc::new(unordered)),
                None => Err(err!(
                    Unsupported,
                    "{} cannot order its input itself, which a stream requires",
                    aggregate.name()
                )),
            }
        })
        .collect()
}

fn stream_scan(scan: &StreamScanExec) -> StreamScan {
    let def = scan.stream();
    StreamScan::new(
        scan.window(),
        def.window_type(),
        def.schema.fields().len(),
        scan.projection().map(<[usize]>::to_vec),
        scan.schema(),
    )
}

/// Stateless steps for `nodes` (top first), returned bottom first.
fn steps(nodes: &[Arc<dyn ExecutionPlan>]) -> Result<StatelessChain> {
    let mut steps = Vec::new();
    for node in nodes.iter().rev() {
        if let Some(filter) = node.as_ref().downcast_ref::<FilterExec>() {
            steps.push(Step::Filter {
                predicate: Arc::clone(filter.predicate()),
                projection: filter.projection().as_ref().map(|p| p.to_vec()),
                schema: filter.schema(),
            });
        } else if let Some(projection) = node.as_ref().downcast_ref::<ProjectionExec>() {
            steps.push(Step::Project {
                exprs: projection
                    .expr()
                    .iter()
                    .map(|p| Arc::clone(&p.expr))
                    .collect(),
                schema: projection.schema(),
            });
        } else if !PASS_THROUGH.contains(&node.name()) {
            return Err(unsupported_node(node.as_ref()));
        }
    }
    Ok(StatelessChain::new(steps))
}

/// If column `index` of the output of `steps` (bottom first) is a window
/// column of the scan, which one.
fn leaf_window_column(
    mut index: usize,
    steps: &[Step],
    scan: &StreamScanExec,
    stream_width: usize,
) -> Option<GroupColumn> {
    for step in steps.iter().rev() {
        match step {
            Step::Filter { projection, .. } => {
                if let Some(projection) = projection {
                    index = *projection.get(index)?;
                }
            }
            Step::Project { exprs, .. } => {
                index = exprs.get(index)?.downcast_ref::<Column>()?.index();
            }
        }
    }
    let full = match scan.projection() {
        Some(projection) => *projection.get(index)?,
        None => index,
    };
    match full.checked_sub(stream_width)? {
        0 => Some(GroupColumn::WindowStart),
        1 => Some(GroupColumn::WindowEnd),
        _ => None,
    }
}

/// Errors when `expr` (over the output of `steps`) reads a window column.
fn reject_window_reference(
    expr: &dyn PhysicalExpr,
    steps: &[Step],
    scan: &StreamScanExec,
    stream_width: usize,
    function: &str,
) -> Result<()> {
    let mut columns = Vec::new();
    collect_column_indices(expr, &mut columns);
    for index in columns {
        if leaf_window_column(index, steps, scan, stream_width).is_some() {
            return Err(err!(
                Unsupported,
                "with {function}, window_start and window_end can only be grouped by and selected, not used in expressions, WHERE or aggregates ({expr})"
            ));
        }
    }
    Ok(())
}

fn collect_column_indices(expr: &dyn PhysicalExpr, out: &mut Vec<usize>) {
    if let Some(column) = expr.downcast_ref::<Column>() {
        out.push(column.index());
    }
    for child in expr.children() {
        collect_column_indices(child.as_ref(), out);
    }
}

fn unsupported_node(node: &dyn ExecutionPlan) -> crate::error::RiffleError {
    let name = node.name();
    let hint = if name.contains("Sort") {
        "ORDER BY over an unbounded stream never finishes; each window's rows are emitted when it closes, so sort them in the application"
    } else if name.contains("Limit") {
        "LIMIT over an unbounded stream is not supported; filter with WHERE or HAVING instead"
    } else if name.contains("Join") {
        "joins between streams are not supported yet"
    } else if name.contains("Union") {
        "UNION is not supported on streams yet; run one query per stream"
    } else if name.contains("WindowAgg") {
        "OVER (...) window functions are not supported on streams; aggregate over TUMBLE(...) with GROUP BY window_start, window_end"
    } else {
        "this operation cannot run incrementally on a stream yet"
    };
    err!(Unsupported, "{name}: {hint}")
}
