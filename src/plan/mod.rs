//! Streaming planner: lowers DataFusion's physical plan of a query to a
//! graph of streaming operators ([`QueryPlan`]).
//!
//! DataFusion parses, resolves, type-checks and optimises the query. We
//! walk its physical plan from the root and make one node per piece:
//!
//! ```text
//! [ProjectionExec / FilterExec]*   over an aggregate: its post steps (HAVING, final SELECT),
//!                                  run by the aggregate node; elsewhere a Chain node
//! AggregateExec (Final)?           ← output schema
//! AggregateExec (Single | Partial) ← group keys, aggregates, filters: an aggregate node
//! UnionExec                        ← a Union node over each input's nodes
//! HashJoinExec / NestedLoopJoinExec ← an IntervalJoin node over both inputs' nodes (join.rs),
//!                                  or a LookupJoin node over the stream's, when one input is a table (lookup.rs)
//! StreamScanExec                   ← a StreamScan node: stream + window table function
//! LookupScanExec                   ← a table's rows, read by the LookupJoin above
//! ```
//!
//! We take the expressions out of each node and never execute the plan.
//! Anything else (sorts, limits, unbounded joins, OVER windows) cannot run
//! incrementally yet and fails here with a message that says what to write.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::err;
use crate::error::Result;
pub use crate::ops::aggregate_node::LatePolicy;
use crate::ops::aggregate_node::{ChangelogNode, ChangelogOperator, WindowNode, WindowOperator};
use crate::ops::chain::{ChainNode, StatelessChain, Step};
use crate::ops::changelog::{with_op_column, ChangelogChainNode, OP_COLUMN};
use crate::ops::graph::{InputRef, QueryPlan};
use crate::ops::grouped_aggregates::AggregateSpec;
use crate::ops::refining_window_aggregate::{RefiningWindowAggregate, RefiningWindowConfig};
use crate::ops::scan::{ScanNode, StreamScan};
use crate::ops::session_aggregate::{SessionAggregate, SessionAggregateConfig};
use crate::ops::union::UnionNode;
use crate::ops::updating_aggregate::{UpdatingAggregate, UpdatingAggregateConfig};
use crate::ops::window_aggregate::{GroupColumn, WindowAggregate, WindowAggregateConfig};
use crate::sql::lookup_table::LookupScanExec;
use crate::sql::stream_table::StreamScanExec;
use crate::table::Tables;
use crate::time::emit::EmitMode;
use crate::time::window::WindowSpec;

mod join;
mod join_parts;
mod lookup;
mod rank;

/// A lowered query: its nodes and what its results are.
#[derive(Debug)]
pub struct StreamingPlan {
    /// The nodes; the last is the query's output.
    pub plan: QueryPlan,
    /// The streams it reads, in order of first use.
    pub streams: Vec<String>,
    /// Whether results are a changelog (carry the `_op` column).
    pub is_changelog: bool,
    /// Whether it aggregates over a window.
    pub has_window: bool,
    /// Unit of its event times (and watermarks).
    pub time_unit: TimeUnit,
    /// The result column holding each row's event time, if one does.
    pub time_column: Option<usize>,
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
    tables: &Tables,
    input_ttls: &[(String, i64)],
) -> Result<StreamingPlan> {
    if options.allowed_lateness_millis < 0 {
        return Err(err!(InvalidInput, "allowed lateness must not be negative"));
    }
    let mut lowering = Lowering {
        plan: QueryPlan::default(),
        options,
        emit,
        has_window: false,
        keep_event_time: false,
        tables,
        input_ttls,
        used_ttls: Vec::new(),
    };
    let root = lowering.lower(plan)?;
    if let Some((unused, _)) = input_ttls
        .iter()
        .find(|(stream, _)| !lowering.used_ttls.contains(stream))
    {
        return Err(err!(
            Unsupported,
            "STATE_TTL names '{unused}', which is not an input of a join or of a GROUP BY without a window in this query: its state has no TTL to set"
        ));
    }
    refuse_versioned(&root)?;
    if let Some(window) = root.window.filter(|w| !w.is_tumbling()) {
        return Err(err!(
            Unsupported,
            "{} without GROUP BY would repeat each row once per window; aggregate with GROUP BY window_start, window_end",
            window.name()
        ));
    }
    if !matches!(root.node, InputRef::Node(n) if n + 1 == lowering.plan.nodes.len()) {
        return Err(err!(Internal, "the query's output is not its last node"));
    }
    let streams = lowering.plan.streams();
    Ok(StreamingPlan {
        plan: lowering.plan,
        streams,
        is_changelog: root.changelog,
        has_window: lowering.has_window,
        time_unit: root.time.unit,
        time_column: root.time_column,
    })
}

/// A versioned read (`FOR SYSTEM_TIME AS OF`) anywhere but as one side of
/// a join is refused, not read as a plain stream.
fn refuse_versioned(lowered: &Lowered) -> Result<()> {
    match &lowered.versioned {
        Some(read) => Err(err!(
            Unsupported,
            "FOR SYSTEM_TIME AS OF {} reads a versioned stream in a temporal join: o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.key = r.key",
            read.as_of
        )),
        None => Ok(()),
    }
}

/// The time of the stream(s) under a node.
#[derive(Debug, Clone, PartialEq)]
struct StreamTime {
    unit: TimeUnit,
    /// Type of the window columns (the event-time column's).
    window_type: DataType,
}

/// What a lowered piece of the plan gives the piece above it.
#[derive(Debug, Clone)]
struct Lowered {
    /// Where its rows come from.
    node: InputRef,
    schema: SchemaRef,
    /// Per output column: the window column of the scan it passes through.
    window_columns: Vec<Option<GroupColumn>>,
    /// Per output column: the column of the scanned stream it passes
    /// through unchanged, by name (what Flink's PARTITION BY names).
    stream_columns: Vec<Option<String>>,
    /// The window table function below, if no aggregate consumed it.
    window: Option<WindowSpec>,
    /// An expression (not a plain column) that reads a window column.
    window_in_expression: Option<String>,
    time: StreamTime,
    /// The output column holding each row's event time, if one does (the
    /// stream's event-time column, or a window aggregate's `window_time`).
    time_column: Option<usize>,
    /// Per output column: `Some(c)` when it holds the event time plus `c`
    /// ticks (the event-time column itself: 0), for a join's time bounds.
    time_offsets: Vec<Option<i64>>,
    /// Whether its rows are a changelog (with the `_op` column).
    changelog: bool,
    /// Flink's `SESSION(TABLE t PARTITION BY keys, ...)`: the keys the
    /// session aggregate must group by (none: no keys).
    session_partition: Option<Vec<String>>,
    /// A stream read as a versioned table (`FOR SYSTEM_TIME AS OF`).
    versioned: Option<VersionedRead>,
}

/// A versioned table read by a temporal join.
#[derive(Debug, Clone)]
struct VersionedRead {
    /// The time it is read as of, as written (`o.ts`).
    as_of: String,
    /// Its primary key columns.
    primary_key: Vec<String>,
}

struct Lowering<'a> {
    plan: QueryPlan,
    options: &'a QueryOptions,
    emit: Option<EmitMode>,
    has_window: bool,
    /// Set while lowering a join's input: a scan right under it keeps the
    /// stream's event-time column even when the query reads it nowhere
    /// (a temporal join needs both sides' times).
    keep_event_time: bool,
    /// The engine's tables, which lookup joins read.
    tables: &'a Tables,
    /// `STATE_TTL` hints: milliseconds per input stream.
    input_ttls: &'a [(String, i64)],
    /// The streams whose hint a join or aggregate took.
    used_ttls: Vec<String>,
}

impl Lowering<'_> {
    fn lower(&mut self, node: &Arc<dyn ExecutionPlan>) -> Result<Lowered> {
        let keep_event_time = std::mem::take(&mut self.keep_event_time);
        if let Some(scan) = (**node).downcast_ref::<StreamScanExec>() {
            return Ok(self.lower_scan(scan, keep_event_time));
        }
        if (**node).downcast_ref::<AggregateExec>().is_some() {
            return self.lower_aggregate(node, StatelessChain::default());
        }
        if let Some(union) = (**node).downcast_ref::<UnionExec>() {
            return self.lower_union(union);
        }
        if join_parts::is_join(node.as_ref()) {
            self.keep_event_time = keep_event_time;
            return self.lower_join(node);
        }
        if let Some(scan) = (**node).downcast_ref::<LookupScanExec>() {
            let name = &scan.table().name;
            return Err(err!(
                Unsupported,
                "'{name}' is a table: a query reads streams, and joins a table to them (FROM stream AS s JOIN {name} ON s.k = {name}.{})",
                scan.table().key_names()[0]
            ));
        }
        if rank::window_functions(node.as_ref()).is_some() {
            return self.lower_window_rank(node, None);
        }
        if is_step(node.as_ref()) {
            // A run of steps; the aggregate under it runs them itself.
            let (run, below) = step_run(node)?;
            let steps = steps(&run)?;
            if (*below).downcast_ref::<AggregateExec>().is_some() {
                return self.lower_aggregate(&below, steps);
            }
            if rank::window_functions(below.as_ref()).is_some() {
                // `rownum <= N` right above: the ranking keeps N a window.
                let rank_column = below.schema().fields().len().saturating_sub(1);
                let limit = rank::rank_limit(&run, rank_column);
                let input = self.lower_window_rank(&below, limit)?;
                return self.lower_chain(input, steps);
            }
            self.keep_event_time = keep_event_time;
            let input = self.lower(&below)?;
            // A scan under a join may carry its event time after the
            // columns DataFusion's plan reads: the steps pass it on.
            let extra = keep_event_time
                && !input.changelog
                && input.schema.fields().len() > below.schema().fields().len();
            let steps = if extra {
                carry_last_column(steps, &input.schema)
            } else {
                steps
            };
            return self.lower_chain(input, steps);
        }
        if node.children().is_empty() {
            return Err(err!(
                Unsupported,
                "the query reads no stream ({}); select FROM a stream or FROM TUMBLE(stream, ts, INTERVAL '1' MINUTE)",
                node.name()
            ));
        }
        Err(unsupported_node(node.as_ref()))
    }

    fn lower_scan(&mut self, scan: &StreamScanExec, keep_event_time: bool) -> Lowered {
        let def = scan.stream();
        let stream_width = def.schema.fields().len();
        let mut schema = scan.schema();
        let mut projection = scan.projection().map(<[usize]>::to_vec);
        if let Some(columns) = projection.as_mut().filter(|columns| {
            keep_event_time
                && def.has_event_time
                && !def.is_changelog
                && scan.window().is_none()
                && !columns.contains(&def.event_time_index)
        }) {
            // After the columns DataFusion's plan reads, so none moves.
            columns.push(def.event_time_index);
            let mut fields = schema.fields().to_vec();
            fields.push(Arc::new(def.schema.field(def.event_time_index).clone()));
            schema = Arc::new(Schema::new(fields));
        }
        // Position in the stream's (windowed) schema of each scanned column.
        let full_index = |index: usize| match &projection {
            Some(projection) => projection.get(index).copied(),
            None => Some(index),
        };
        let window_columns = (0..schema.fields().len())
            .map(
                |index| match full_index(index)?.checked_sub(stream_width)? {
                    0 => Some(GroupColumn::WindowStart),
                    1 => Some(GroupColumn::WindowEnd),
                    2 => Some(GroupColumn::WindowTime),
                    _ => None,
                },
            )
            .collect();
        let stream_columns = (0..schema.fields().len())
            .map(|index| {
                let full = full_index(index).filter(|&i| i < stream_width)?;
                Some(def.schema.field(full).name().clone())
            })
            .chain(def.is_changelog.then_some(None))
            .collect();
        let time_column = def
            .has_event_time
            .then(|| {
                (0..schema.fields().len())
                    .find(|&index| full_index(index) == Some(def.event_time_index))
            })
            .flatten();
        let time = StreamTime {
            unit: def.event_time_unit,
            window_type: def.window_type(),
        };
        let mut stream_scan = StreamScan::new(
            scan.window(),
            def.window_type(),
            def.event_time_unit,
            stream_width,
            projection.clone(),
            Arc::clone(&schema),
        );
        let width = schema.fields().len() + usize::from(def.is_changelog);
        // A changelog view's rows keep their change kinds.
        let schema = if def.is_changelog {
            let schema = with_op_column(&schema);
            stream_scan = stream_scan.of_changelog(Arc::clone(&schema));
            schema
        } else {
            schema
        };
        // A join's inputs keep their rows' origin too: a self-join tells by
        // it a row late on both inputs, to count it once.
        let side_output = self.options.late == LatePolicy::SideOutput || keep_event_time;
        let node = self.plan.add(
            Box::new(ScanNode::new(
                stream_scan,
                time.unit,
                side_output,
                (def.is_view && def.has_event_time).then_some(def.event_time_index),
            )),
            vec![InputRef::Stream(def.name.clone())],
        );
        Lowered {
            node: InputRef::Node(node),
            schema,
            window_columns,
            stream_columns,
            window: scan.window(),
            window_in_expression: None,
            time,
            time_offsets: (0..width)
                .map(|c| (time_column == Some(c) && !def.is_changelog).then_some(0))
                .collect(),
            time_column: time_column.filter(|_| !def.is_changelog),
            changelog: def.is_changelog,
            session_partition: scan.session_partition().map(<[String]>::to_vec),
            versioned: scan.versioned_as_of().map(|as_of| VersionedRead {
                as_of: as_of.to_string(),
                primary_key: def.primary_key.clone(),
            }),
        }
    }

    fn lower_chain(&mut self, input: Lowered, chain: StatelessChain) -> Result<Lowered> {
        if chain.is_empty() {
            return Ok(input);
        }
        let filters = chain
            .steps()
            .iter()
            .any(|s| matches!(s, Step::Filter { .. }));
        if input.versioned.is_some() && filters {
            // Filtering versions first would join an older version that
            // passes where Flink pads or drops the row.
            return Err(err!(
                Unsupported,
                "a condition on the versioned side alone of a temporal join is not supported yet: it would choose among the versions that pass it; filter the result instead"
            ));
        }
        if input.changelog {
            // Both sides of each change go through the steps.
            let steps_schema = chain
                .output_schema()
                .ok_or_else(|| err!(Internal, "a chain without steps"))?;
            let schema = with_op_column(&steps_schema);
            let node = self.plan.add(
                Box::new(ChangelogChainNode::new(chain, Arc::clone(&schema))),
                vec![input.node],
            );
            return Ok(Lowered {
                node: InputRef::Node(node),
                window_columns: vec![None; schema.fields().len()],
                stream_columns: vec![None; schema.fields().len()],
                time_offsets: vec![None; schema.fields().len()],
                schema,
                window_in_expression: None,
                time_column: None,
                ..input
            });
        }
        let mut window_columns = input.window_columns.clone();
        let mut stream_columns = input.stream_columns.clone();
        let mut time_offsets = input.time_offsets.clone();
        let mut window_in_expression = input.window_in_expression.clone();
        for step in chain.steps() {
            // Expressions of this step, read against its input's columns.
            let computed: Vec<&Arc<dyn PhysicalExpr>> = match step {
                Step::Filter { predicate, .. } => vec![predicate],
                Step::Project { exprs, .. } => exprs
                    .iter()
                    .filter(|e| e.downcast_ref::<Column>().is_none())
                    .collect(),
            };
            if window_in_expression.is_none() {
                window_in_expression = computed
                    .iter()
                    .find(|e| reads_window_column(e.as_ref(), &window_columns))
                    .map(|e| e.to_string());
            }
            window_columns = through_step(&window_columns, step);
            stream_columns = through_step(&stream_columns, step);
            let scale = TimeScale {
                unit: input.time.unit,
                days_fixed: days_are_fixed(&input.time.window_type),
            };
            time_offsets = offsets_through_step(&time_offsets, step, scale);
        }
        let schema = chain
            .output_schema()
            .ok_or_else(|| err!(Internal, "a chain without steps"))?;
        let time_column = input
            .time_column
            .and_then(|column| column_through(&chain, column));
        let node = self.plan.add(
            Box::new(ChainNode::new(chain, Arc::clone(&input.schema))),
            vec![input.node],
        );
        Ok(Lowered {
            node: InputRef::Node(node),
            schema,
            window_columns,
            stream_columns,
            window_in_expression,
            time_column,
            time_offsets,
            ..input
        })
    }

    fn lower_union(&mut self, union: &UnionExec) -> Result<Lowered> {
        let inputs = union
            .children()
            .into_iter()
            .map(|child| self.lower(child))
            .collect::<Result<Vec<_>>>()?;
        inputs.iter().try_for_each(refuse_versioned)?;
        // With a changelog among them, the union is one: the other inputs'
        // rows are inserts.
        let changelog = inputs.iter().any(|i| i.changelog);
        let first = inputs
            .first()
            .cloned()
            .ok_or_else(|| err!(Internal, "UNION without inputs"))?;
        if let Some(other) = inputs.iter().find(|i| i.time.unit != first.time.unit) {
            return Err(err!(
                Unsupported,
                "UNION ALL of streams whose event times have different units ({:?} and {:?}) is not supported; declare them with the same TIMESTAMP precision",
                first.time.unit,
                other.time.unit
            ));
        }
        // A window column stays one if it is the same in every input, under
        // the same window.
        let same_window = inputs.iter().all(|i| i.window == first.window);
        let window_columns = (0..first.window_columns.len())
            .map(|column| {
                let value = first.window_columns[column];
                (same_window
                    && inputs
                        .iter()
                        .all(|i| i.window_columns.get(column).copied().flatten() == value))
                .then_some(value)
                .flatten()
            })
            .collect();
        let window = if same_window && !changelog {
            first.window
        } else {
            None
        };
        if !same_window || changelog {
            if let Some(window) = inputs
                .iter()
                .find_map(|i| i.window.filter(|w| !w.is_tumbling()))
            {
                return Err(err!(
                    Unsupported,
                    "UNION ALL of {} rows with {} is not supported; window the union instead",
                    window.name(),
                    if changelog {
                        "a changelog"
                    } else {
                        "differently windowed inputs"
                    }
                ));
            }
        }
        let schema = if changelog {
            with_op_column(&union.schema())
        } else {
            union.schema()
        };
        if inputs
            .iter()
            .any(|i| i.session_partition != first.session_partition)
        {
            return Err(err!(
                Unsupported,
                "UNION ALL of SESSION windows partitioned differently (Flink's PARTITION BY, or none): window the union instead"
            ));
        }
        let as_inserts = inputs.iter().map(|i| changelog && !i.changelog).collect();
        let window_columns = if changelog {
            // Windows are over before a changelog: none pass through it.
            vec![None; schema.fields().len()]
        } else {
            window_columns
        };
        // A stream column stays one where every input passes the same.
        let stream_columns = (0..schema.fields().len())
            .map(|column| {
                let name = first.stream_columns.get(column).cloned().flatten()?;
                inputs
                    .iter()
                    .all(|i| {
                        i.stream_columns.get(column).cloned().flatten().as_ref() == Some(&name)
                    })
                    .then_some(name)
            })
            .collect();
        // An event-time offset stays one where every input has the same.
        let time_offsets = (0..schema.fields().len())
            .map(|column| {
                let offset = first.time_offsets.get(column).copied().flatten()?;
                (!changelog
                    && inputs
                        .iter()
                        .all(|i| i.time_offsets.get(column).copied().flatten() == Some(offset)))
                .then_some(offset)
            })
            .collect();
        let node = self.plan.add(
            Box::new(UnionNode::new(as_inserts, Arc::clone(&schema))),
            inputs.iter().map(|i| i.node.clone()).collect(),
        );
        Ok(Lowered {
            node: InputRef::Node(node),
            schema,
            window_columns,
            stream_columns,
            time_offsets,
            window,
            window_in_expression: inputs.iter().find_map(|i| i.window_in_expression.clone()),
            time_column: first
                .time_column
                .filter(|c| !changelog && inputs.iter().all(|i| i.time_column == Some(*c))),
            time: first.time,
            changelog,
            session_partition: first.session_partition.clone(),
            versioned: None,
        })
    }

    /// An aggregate node for `node` (the top AggregateExec), running `post`
    /// on what it emits.
    fn lower_aggregate(
        &mut self,
        node: &Arc<dyn ExecutionPlan>,
        post: StatelessChain,
    ) -> Result<Lowered> {
        let top = (**node)
            .downcast_ref::<AggregateExec>()
            .ok_or_else(|| err!(Internal, "not an aggregate"))?;
        // Final over Partial (through pass-through nodes), or Single.
        let bottom_plan = match top.mode() {
            AggregateMode::Single | AggregateMode::SinglePartitioned => Arc::clone(node),
            AggregateMode::Final | AggregateMode::FinalPartitioned => {
                let mut child = only_child(node.as_ref())?;
                while PASS_THROUGH.contains(&child.name()) {
                    child = only_child(child.as_ref())?;
                }
                child
            }
            _ => {
                return Err(err!(
                    Unsupported,
                    "nested aggregation (an aggregate over an aggregate) cannot run on a stream yet"
                ))
            }
        };
        let bottom = (*bottom_plan)
            .downcast_ref::<AggregateExec>()
            .filter(|bottom| {
                std::ptr::eq(*bottom, top) || matches!(bottom.mode(), AggregateMode::Partial)
            })
            .ok_or_else(|| {
                err!(
                    Internal,
                    "unexpected plan between partial and final aggregation"
                )
            })?;
        let below = only_child(bottom_plan.as_ref())?;
        // A sort under the aggregate only serves ordered aggregates
        // (first_value(x ORDER BY ts), array_agg(... ORDER BY ...)). Stream
        // input is never sorted, so drop it and let those aggregates order
        // internally.
        let mut input_plan = Arc::clone(&below);
        while PASS_THROUGH.contains(&input_plan.name()) {
            input_plan = only_child(input_plan.as_ref())?;
        }
        if input_plan.name() == "SortExec" {
            input_plan = only_child(input_plan.as_ref())?;
        } else {
            input_plan = below;
        }
        let input = self.lower(&input_plan)?;
        refuse_versioned(&input)?;
        // Over a changelog the aggregate takes update_before and delete
        // rows back out: an updating aggregate with retracting state.
        // The change kind is the changelog's last column (a column of the
        // query's own may carry the same name).
        let changes = if input.changelog {
            let last = input.schema.fields().len().checked_sub(1);
            let named = last.filter(|&i| input.schema.field(i).name() == OP_COLUMN);
            Some(
                named
                    .ok_or_else(|| err!(Internal, "a changelog without its {OP_COLUMN} column"))?,
            )
        } else {
            None
        };
        let group_by = bottom.group_expr();
        if group_by.has_grouping_set() {
            return Err(err!(
                Unsupported,
                "GROUPING SETS, ROLLUP and CUBE are not supported on streams yet"
            ));
        }
        let input_schema = bottom.input_schema();
        let mut group_columns = Vec::new();
        let mut slice_bound = None;
        let mut keys = Vec::new();
        let mut key_fields = Vec::new();
        for (expr, name) in group_by.expr() {
            let traced = expr
                .downcast_ref::<Column>()
                .and_then(|c| input.window_columns.get(c.index()).copied().flatten())
                .filter(|_| input.window.is_some());
            match traced {
                Some(column) => {
                    group_columns.push(column);
                    // Any window column bounds a row's slice; prefer the start.
                    let rank = |c: GroupColumn| match c {
                        GroupColumn::WindowStart => 0,
                        GroupColumn::WindowEnd => 1,
                        _ => 2,
                    };
                    if slice_bound
                        .as_ref()
                        .is_none_or(|(_, bound)| rank(column) < rank(*bound))
                    {
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
        let filters = bottom.filter_expr().to_vec();
        if let (Some(WindowSpec::Session(_)), Some(partition)) =
            (input.window, &input.session_partition)
        {
            // Riffle's sessions are per GROUP BY key: Flink's PARTITION BY
            // must name exactly those keys.
            // Each key by the stream column it is (an expression, or a
            // renamed other column, is none of the PARTITION BY keys).
            let mut grouped: Vec<String> = keys
                .iter()
                .map(|k| {
                    k.downcast_ref::<Column>()
                        .and_then(|c| input.stream_columns.get(c.index()).cloned().flatten())
                        .unwrap_or_else(|| k.to_string())
                })
                .collect();
            let mut wanted = partition.clone();
            grouped.sort();
            wanted.sort();
            if grouped != wanted {
                return Err(err!(
                    Unsupported,
                    "SESSION with PARTITION BY [{}] grouped by [{}]: Riffle's sessions are per GROUP BY key, so PARTITION BY must name the keys the query groups by (with window_start, window_end){}",
                    partition.join(", "),
                    grouped.join(", "),
                    if partition.is_empty() {
                        "; a SESSION without PARTITION BY makes sessions over all rows, so it can group by the window only"
                    } else {
                        ""
                    }
                ));
            }
        }
        if let Some(window) = input.window {
            if slice_bound.is_none() {
                return Err(err!(
                    Unsupported,
                    "a {} query must GROUP BY window_start (and window_end): without a window in the key, groups would never close",
                    window.name()
                ));
            }
            if !window.is_tumbling() {
                // Rows carry their slice, not their (several) windows: the
                // window columns may only be passed through to the GROUP BY.
                let offending = arguments
                    .iter()
                    .flatten()
                    .chain(filters.iter().flatten())
                    .find(|e| reads_window_column(e.as_ref(), &input.window_columns))
                    .map(|e| e.to_string())
                    .or(input.window_in_expression.clone());
                if let Some(expr) = offending {
                    return Err(err!(
                        Unsupported,
                        "with {}, window_start and window_end can only be grouped by and selected, not used in expressions, WHERE or aggregates ({expr})",
                        window.name()
                    ));
                }
            }
        }
        let hoisted = self.hoist_inputs(&input, keys, arguments, filters)?;
        let mut spec = AggregateSpec::new(
            hoisted.keys,
            Arc::new(Schema::new(key_fields)),
            unordered_input(bottom.aggr_expr())?,
            hoisted.arguments,
            hoisted.filters,
        );
        if changes.is_some() {
            spec = spec.with_retractions()?;
        }
        let input_node = hoisted.node;
        let unit = input.time.unit;
        let time_type = input.time.window_type.clone();
        let late = self.options.late;
        // Windowed results carry their window_time as event time, if grouped by.
        let time_column = group_columns
            .iter()
            .position(|c| *c == GroupColumn::WindowTime)
            .and_then(|column| column_through(&post, column));
        // Its window columns as offsets from window_time (what a join of
        // windowed results bounds).
        let offsets = input.window.map(|w| window_offsets(w, unit));
        let mut window_time_offsets: Vec<(usize, i64)> = Vec::new();
        for (position, column) in group_columns.iter().enumerate() {
            let offset = match (column, offsets) {
                (GroupColumn::WindowStart, Some(o)) => o[0],
                (GroupColumn::WindowEnd, Some(o)) => o[1],
                (GroupColumn::WindowTime, Some(o)) => o[2],
                _ => None,
            };
            if let (Some(offset), Some(at)) = (offset, column_through(&post, position)) {
                window_time_offsets.push((at, offset));
            }
        }
        let output = |node: usize, schema: SchemaRef, changelog: bool| {
            let width = schema.fields().len();
            Lowered {
                node: InputRef::Node(node),
                window_columns: vec![None; schema.fields().len()],
                stream_columns: vec![None; schema.fields().len()],
                schema,
                window: None,
                window_in_expression: None,
                time: input.time.clone(),
                time_column: time_column.filter(|_| !changelog),
                time_offsets: (0..width)
                    .map(|c| {
                        let offset = window_time_offsets.iter().find(|(at, _)| *at == c);
                        offset.filter(|_| !changelog).map(|(_, o)| *o)
                    })
                    .collect(),
                changelog,
                session_partition: None,
                versioned: None,
            }
        };
        // The schema after the steps the node runs on what it emits.
        let result_schema = post.output_schema().unwrap_or_else(|| node.schema());
        let Some(window) = input.window else {
            // No window: an updating aggregate with a changelog.
            let ttl = self
                .hinted_ttl(&input.node)?
                .or(self.options.state_ttl_millis)
                .map(|ms| crate::ops::source::millis_to_ticks(ms, unit));
            let aggregate = UpdatingAggregate::try_new(UpdatingAggregateConfig {
                spec,
                output_schema: top.schema(),
                ttl,
                changes,
            })?;
            let schema = with_op_column(&result_schema);
            let node = self.plan.add(
                Box::new(ChangelogNode::new(
                    ChangelogOperator::Groups(Box::new(aggregate)),
                    post,
                    Arc::clone(&schema),
                    unit,
                    late,
                )),
                vec![input_node],
            );
            return Ok(output(node, schema, true));
        };
        self.has_window = true;
        let slice_bound =
            slice_bound.ok_or_else(|| err!(Internal, "a window aggregate without its window"))?;
        let refine = matches!(self.emit, Some(EmitMode::OnUpdate | EmitMode::Every { .. }))
            || self.options.allowed_lateness_millis > 0;
        if refine {
            let allowed_lateness =
                crate::ops::source::millis_to_ticks(self.options.allowed_lateness_millis, unit);
            let emit = self.emit.unwrap_or(EmitMode::OnWindowClose);
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
            let schema = with_op_column(&result_schema);
            let node = self.plan.add(
                Box::new(ChangelogNode::new(
                    operator,
                    post,
                    Arc::clone(&schema),
                    unit,
                    late,
                )),
                vec![input_node],
            );
            return Ok(output(node, schema, true));
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
        let node = self.plan.add(
            Box::new(WindowNode::new(
                operator,
                post,
                Arc::clone(&result_schema),
                unit,
                late,
            )),
            vec![input_node],
        );
        Ok(output(node, result_schema, false))
    }
}

/// An aggregate's inputs after [`Lowering::hoist_inputs`].
struct HoistedInputs {
    /// The node the aggregate reads.
    node: InputRef,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
}

impl Lowering<'_> {
    /// Moves the computed expressions an aggregate evaluates on its input
    /// (group keys, arguments, FILTER predicates that are not plain columns
    /// or literals) into a stateless node before it, which appends their
    /// values as columns; the aggregate then reads those columns. A push
    /// runs every stateless node before any stateful one, so an error in
    /// these expressions (a division by zero, a failed cast) fails the push
    /// before any state has changed.
    fn hoist_inputs(
        &mut self,
        input: &Lowered,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    ) -> Result<HoistedInputs> {
        let width = input.schema.fields().len();
        let mut computed: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        let mut hoist = |expr: Arc<dyn PhysicalExpr>| -> Result<Arc<dyn PhysicalExpr>> {
            if expr.downcast_ref::<Column>().is_some() || expr.downcast_ref::<Literal>().is_some() {
                return Ok(expr);
            }
            let position = match computed.iter().position(|e| e.as_ref() == expr.as_ref()) {
                Some(position) => position,
                None => {
                    fields.push(Field::new(
                        expr.to_string(),
                        expr.data_type(&input.schema)?,
                        expr.nullable(&input.schema)?,
                    ));
                    computed.push(Arc::clone(&expr));
                    computed.len() - 1
                }
            };
            Ok(Arc::new(Column::new(&expr.to_string(), width + position)))
        };
        let keys = keys
            .into_iter()
            .map(&mut hoist)
            .collect::<Result<Vec<_>>>()?;
        let arguments = arguments
            .into_iter()
            .map(|exprs| {
                exprs
                    .into_iter()
                    .map(&mut hoist)
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let filters = filters
            .into_iter()
            .map(|filter| filter.map(&mut hoist).transpose())
            .collect::<Result<Vec<_>>>()?;
        if computed.is_empty() {
            return Ok(HoistedInputs {
                node: input.node.clone(),
                keys,
                arguments,
                filters,
            });
        }
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = input
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
            .collect();
        exprs.extend(computed);
        let mut all_fields: Vec<Field> = input
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        all_fields.extend(fields);
        let schema = Arc::new(Schema::new(all_fields));
        let chain = StatelessChain::new(vec![Step::Project { exprs, schema }]);
        let node = self.plan.add(
            Box::new(ChainNode::new(chain, Arc::clone(&input.schema))),
            vec![input.node.clone()],
        );
        Ok(HoistedInputs {
            node: InputRef::Node(node),
            keys,
            arguments,
            filters,
        })
    }
}

/// Per-column facts of a step's input, carried to its output: a column
/// passed through keeps its fact, a computed one has none.
fn through_step<T: Clone>(values: &[Option<T>], step: &Step) -> Vec<Option<T>> {
    let at = |i: usize| values.get(i).cloned().flatten();
    match step {
        Step::Filter {
            projection: Some(projection),
            ..
        } => projection.iter().map(|&i| at(i)).collect(),
        Step::Filter { .. } => values.to_vec(),
        Step::Project { exprs, .. } => exprs
            .iter()
            .map(|expr| at(expr.downcast_ref::<Column>()?.index()))
            .collect(),
    }
}

/// `window_start`, `window_end` and `window_time` of `window`'s windows as
/// offsets from `window_time` (`None`: not a constant one).
fn window_offsets(window: WindowSpec, unit: TimeUnit) -> [Option<i64>; 3] {
    // window_time is the window's last millisecond: end - slack.
    let slack = crate::time::units_per_milli(unit);
    let size = match window {
        WindowSpec::Tumble(tumble) => Some(tumble.size()),
        WindowSpec::Hop { size, .. } => Some(size),
        WindowSpec::Cumulate { .. } | WindowSpec::Session(_) => None,
    };
    [size.map(|size| slack - size), Some(slack), Some(0)]
}

/// A unit of event time, and whether a day in it is always 24 hours.
#[derive(Debug, Clone, Copy)]
struct TimeScale {
    unit: TimeUnit,
    days_fixed: bool,
}

/// Whether adding a day to a value of `time_type` always adds 24 hours:
/// not in a time zone with daylight-saving changes.
fn days_are_fixed(time_type: &DataType) -> bool {
    match time_type {
        DataType::Timestamp(_, Some(zone)) => {
            matches!(zone.as_ref(), "UTC" | "+00:00" | "Z" | "Etc/UTC")
                || zone.starts_with('+')
                || zone.starts_with('-')
        }
        _ => true,
    }
}

impl Lowering<'_> {
    /// The `STATE_TTL` hint (milliseconds) of the input whose rows reach
    /// `input`: the one stream under it. A hinted stream deeper in an
    /// input that reads several is refused: which state it sets is unclear.
    fn hinted_ttl(&mut self, input: &InputRef) -> Result<Option<i64>> {
        if self.input_ttls.is_empty() {
            return Ok(None);
        }
        let mut streams = Vec::new();
        self.streams_under(input, &mut streams);
        let hinted: Vec<&(String, i64)> = self
            .input_ttls
            .iter()
            .filter(|(stream, _)| streams.contains(stream))
            .collect();
        let unused: Vec<&&(String, i64)> = hinted
            .iter()
            .filter(|(stream, _)| !self.used_ttls.contains(stream))
            .collect();
        match (streams.as_slice(), hinted.as_slice(), unused.as_slice()) {
            (_, [], _) => Ok(None),
            // A direct input (a self-join's two inputs both are).
            ([_], [(stream, millis)], _) => {
                self.used_ttls.push(stream.clone());
                Ok(Some(*millis))
            }
            // A join below took the hint already.
            (_, _, []) => Ok(None),
            (_, _, [(stream, _), ..]) => Err(err!(
                Unsupported,
                "STATE_TTL names '{stream}', which is one of several streams ({}) under one input: hint the input as a whole (a view's or a subquery's alias) is not supported; hint each join's direct inputs",
                streams.join(", ")
            )),
        }
    }

    fn streams_under(&self, input: &InputRef, out: &mut Vec<String>) {
        match input {
            InputRef::Stream(name) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            InputRef::Node(node) => {
                if let Some(node) = self.plan.nodes.get(*node) {
                    for input in &node.inputs {
                        self.streams_under(input, out);
                    }
                }
            }
        }
    }
}

/// `chain` passing its input's last column (one DataFusion's plan does not
/// know) through to its output, last.
fn carry_last_column(chain: StatelessChain, input: &SchemaRef) -> StatelessChain {
    let mut width = input.fields().len();
    let last = Arc::new(input.field(width - 1).clone());
    let with_last = |schema: &SchemaRef| {
        let mut fields = schema.fields().to_vec();
        fields.push(Arc::clone(&last));
        Arc::new(Schema::new(fields))
    };
    let mut steps = Vec::new();
    for step in chain.steps() {
        let step = match step {
            Step::Filter {
                predicate,
                projection: Some(projection),
                schema,
            } => {
                let mut projection = projection.clone();
                projection.push(width - 1);
                Step::Filter {
                    predicate: Arc::clone(predicate),
                    projection: Some(projection),
                    schema: with_last(schema),
                }
            }
            Step::Filter {
                predicate,
                projection: None,
                schema,
            } => Step::Filter {
                predicate: Arc::clone(predicate),
                projection: None,
                schema: with_last(schema),
            },
            Step::Project { exprs, schema } => {
                let mut exprs = exprs.clone();
                exprs.push(Arc::new(Column::new(last.name(), width - 1)));
                Step::Project {
                    exprs,
                    schema: with_last(schema),
                }
            }
        };
        width = match &step {
            Step::Filter { schema, .. } | Step::Project { schema, .. } => schema.fields().len(),
        };
        steps.push(step);
    }
    StatelessChain::new(steps)
}

/// Event-time offsets of a step's input carried to its output: a column
/// passed through keeps its offset, `column ± interval` adds to it.
fn offsets_through_step(
    offsets: &[Option<i64>],
    step: &Step,
    scale: TimeScale,
) -> Vec<Option<i64>> {
    let Step::Project { exprs, .. } = step else {
        return through_step(offsets, step);
    };
    let at = |expr: &dyn PhysicalExpr| {
        let column = expr.downcast_ref::<Column>()?;
        offsets.get(column.index()).copied().flatten()
    };
    exprs
        .iter()
        .map(|expr| {
            if let Some(offset) = at(expr.as_ref()) {
                return Some(offset);
            }
            let binary =
                expr.downcast_ref::<datafusion::physical_expr::expressions::BinaryExpr>()?;
            let sign = match binary.op() {
                datafusion::logical_expr::Operator::Plus => 1,
                datafusion::logical_expr::Operator::Minus => -1,
                _ => return None,
            };
            let offset = at(binary.left().as_ref())?;
            let ticks = join::interval_ticks(binary.right().as_ref(), scale).ok()??;
            offset.checked_add(ticks.checked_mul(sign)?)
        })
        .collect()
}

/// Where column `index` of a chain's input is in its output, if the chain
/// passes it through unchanged.
fn column_through(chain: &StatelessChain, mut index: usize) -> Option<usize> {
    for step in chain.steps() {
        index = match step {
            Step::Filter {
                projection: Some(projection),
                ..
            } => projection.iter().position(|&i| i == index)?,
            Step::Filter { .. } => index,
            Step::Project { exprs, .. } => exprs.iter().position(|e| {
                e.downcast_ref::<Column>()
                    .is_some_and(|c| c.index() == index)
            })?,
        };
    }
    Some(index)
}

/// A node of DataFusion's plan.
type PlanNode = Arc<dyn ExecutionPlan>;

/// The stateless steps from `node` down (top first), and the node under
/// them.
fn step_run(node: &PlanNode) -> Result<(Vec<PlanNode>, PlanNode)> {
    let mut run = Vec::new();
    let mut below = Arc::clone(node);
    while is_step(below.as_ref()) {
        let child = only_child(below.as_ref())?;
        run.push(below);
        below = child;
    }
    Ok((run, below))
}

fn is_step(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<FilterExec>().is_some()
        || node.downcast_ref::<ProjectionExec>().is_some()
        || PASS_THROUGH.contains(&node.name())
}

fn only_child(node: &dyn ExecutionPlan) -> Result<Arc<dyn ExecutionPlan>> {
    match node.children().as_slice() {
        [child] => Ok(Arc::clone(child)),
        _ => Err(unsupported_node(node)),
    }
}

/// Whether `expr` reads a column that is a window column.
fn reads_window_column(expr: &dyn PhysicalExpr, window_columns: &[Option<GroupColumn>]) -> bool {
    let mut columns = Vec::new();
    collect_column_indices(expr, &mut columns);
    columns
        .into_iter()
        .any(|i| window_columns.get(i).copied().flatten().is_some())
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
