//! Lowering of a stream joined with a table (`CREATE TABLE ... PRIMARY
//! KEY`): a lookup join node on the stream's side, reading the table as it
//! stands when each row is processed.
//!
//! The table's side of DataFusion's join is its scan under stateless steps
//! (a filter DataFusion pushed down, a projection); the steps run on the
//! table rows each batch finds. The join must find rows by the whole
//! primary key, so each stream row meets at most one table row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::{JoinSide, JoinType};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal, TryCastExpr};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::{PhysicalExpr, PhysicalExprRef};
use datafusion::physical_plan::ExecutionPlan;

use super::join_parts::{output_columns, JoinParts, TableSide};
use super::{Lowered, Lowering};
use crate::err;
use crate::error::Result;
use crate::ops::chain::{StatelessChain, Step};
use crate::ops::graph::InputRef;
use crate::ops::lookup_join::{LookupJoin, LookupJoinSpec, LookupKind};

/// Where output column `index` of `chain` comes from in its input, if it
/// is an input column passed through (perhaps cast), and whether a step
/// cast it.
fn column_before(chain: &StatelessChain, mut index: usize) -> Option<(usize, bool)> {
    let mut cast = false;
    for step in chain.steps().iter().rev() {
        index = match step {
            Step::Filter {
                projection: Some(projection),
                ..
            } => *projection.get(index)?,
            Step::Filter { .. } => index,
            Step::Project { exprs, .. } => {
                let (bare, cast_here) = uncast(exprs.get(index)?);
                cast |= cast_here;
                bare.downcast_ref::<Column>()?.index()
            }
        };
    }
    Some((index, cast))
}

/// `expr` without casts, and whether there was one.
fn uncast(expr: &PhysicalExprRef) -> (&dyn PhysicalExpr, bool) {
    let mut expr: &dyn PhysicalExpr = expr.as_ref();
    let mut cast = false;
    loop {
        if let Some(inner) = expr.downcast_ref::<CastExpr>() {
            expr = inner.expr().as_ref();
        } else if let Some(inner) = expr.downcast_ref::<TryCastExpr>() {
            expr = inner.expr().as_ref();
        } else {
            return (expr, cast);
        }
        cast = true;
    }
}

/// `column = literal` (either way round): the column and the literal.
fn column_equals_literal(expr: &dyn PhysicalExpr) -> Option<(usize, PhysicalExprRef)> {
    let binary = expr.downcast_ref::<BinaryExpr>()?;
    if *binary.op() != Operator::Eq {
        return None;
    }
    let (left, right) = (binary.left(), binary.right());
    let pick = |column: &PhysicalExprRef, literal: &PhysicalExprRef| {
        let column = column.downcast_ref::<Column>()?.index();
        literal.downcast_ref::<Literal>()?;
        Some((column, Arc::clone(literal)))
    };
    pick(left, right).or_else(|| pick(right, left))
}

/// Whether a key of type `key` can be found by values of type `by` (the
/// type DataFusion compares them as) exactly: both numbers, both strings,
/// or both times.
fn same_family(key: &DataType, by: &DataType) -> bool {
    let family = |t: &DataType| {
        if t.is_numeric() {
            0
        } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            1
        } else if t.is_temporal() {
            2
        } else {
            3
        }
    };
    family(key) == family(by) && family(key) < 3
}

impl Lowering<'_> {
    /// `stream JOIN table ON stream.k = table.key`: `stream_side` is the
    /// stream's side of DataFusion's join.
    pub(super) fn lower_lookup_join(
        &mut self,
        node: &Arc<dyn ExecutionPlan>,
        parts: JoinParts,
        stream_side: usize,
        table_side: TableSide,
        keep_event_time: bool,
    ) -> Result<Lowered> {
        let name = table_side.table.name.clone();
        let kind = match (parts.join_type, stream_side) {
            (JoinType::Inner, _) => LookupKind::Inner,
            (JoinType::Left, 0) | (JoinType::Right, 1) => LookupKind::Outer,
            (JoinType::LeftSemi, 0) | (JoinType::RightSemi, 1) => LookupKind::Semi,
            (JoinType::LeftAnti, 0) | (JoinType::RightAnti, 1) => LookupKind::Anti,
            (kind, _) => {
                return Err(err!(
                    Unsupported,
                    "a {kind} join keeps rows of table '{name}', which have no event time: a lookup join keeps the stream's rows (stream JOIN {name}, stream LEFT JOIN {name}, EXISTS / IN over {name})"
                ))
            }
        };
        let stream_plan = if stream_side == 0 {
            &parts.left
        } else {
            &parts.right
        };
        self.keep_event_time = keep_event_time;
        let stream = self.lower(stream_plan)?;
        super::refuse_versioned(&stream)?;
        if stream.changelog {
            return Err(err!(
                Unsupported,
                "a lookup join of a changelog (a GROUP BY without a window) with table '{name}' is not supported: a retraction could meet another row of the table than the row it retracts; join the stream with the table first, then aggregate"
            ));
        }
        // The keys: every primary key column, each by one equality.
        let table = &table_side.table;
        let table_schema = if stream_side == 0 {
            parts.right.schema()
        } else {
            parts.left.schema()
        };
        let mut probe_keys: Vec<Option<PhysicalExprRef>> = vec![None; table.primary_key.len()];
        let mut extra_keys = Vec::new();
        for (left, right) in &parts.on {
            let (stream_key, table_key) = if stream_side == 0 {
                (left, right)
            } else {
                (right, left)
            };
            let (bare, cast_above) = uncast(table_key);
            let traced = bare
                .downcast_ref::<Column>()
                .and_then(|c| column_before(&table_side.steps, c.index()));
            let cast = cast_above || traced.is_some_and(|(_, cast)| cast);
            let key_column = traced
                .and_then(|(c, _)| table_side.projection.get(c).copied())
                .and_then(|c| table.primary_key.iter().position(|&k| k == c));
            match key_column {
                Some(at) if probe_keys[at].is_none() => {
                    let key_type = table.schema.field(table.primary_key[at]).data_type();
                    let by = table_key.data_type(&table_schema)?;
                    if cast && !same_family(key_type, &by) {
                        return Err(err!(
                            Unsupported,
                            "table '{name}' is looked up by its key {} ({key_type}) compared as {by}: declare the key with the type of {stream_key}, or cast {stream_key} to {key_type}",
                            table.schema.field(table.primary_key[at]).name()
                        ));
                    }
                    probe_keys[at] = Some(Arc::clone(stream_key));
                }
                _ => extra_keys.push([Arc::clone(stream_key), Arc::clone(table_key)]),
            }
        }
        // A key column the ON condition leaves out may be fixed by a
        // filter on the table alone (`AND p.day = 1`, which DataFusion
        // puts right above the table's scan): looked up as that constant.
        if let Some(Step::Filter { predicate, .. }) = table_side.steps.steps().first() {
            for conjunct in split_conjunction(predicate) {
                let Some((column, value)) = column_equals_literal(conjunct.as_ref()) else {
                    continue;
                };
                let key = table_side
                    .projection
                    .get(column)
                    .and_then(|c| table.primary_key.iter().position(|k| k == c));
                if let Some(at) = key.filter(|&at| probe_keys[at].is_none()) {
                    probe_keys[at] = Some(value);
                }
            }
        }
        let Some(probe_keys) = probe_keys.into_iter().collect::<Option<Vec<_>>>() else {
            return Err(err!(
                Unsupported,
                "a lookup join finds rows of table '{name}' by its primary key ({}): join ON an equality with each of those columns, e.g. ON s.{first} = {name}.{first}",
                table.key_names().join(", "),
                first = table.key_names()[0]
            ));
        };
        if let Some(window) = stream.window.filter(|w| !w.is_tumbling()) {
            // The residual condition reads its own columns: those of the
            // stream's side, by their index there.
            let stream_join_side = if stream_side == 0 {
                JoinSide::Left
            } else {
                JoinSide::Right
            };
            let filter_reads = parts.filter.iter().any(|filter| {
                filter.column_indices().iter().any(|c| {
                    c.side == stream_join_side
                        && stream
                            .window_columns
                            .get(c.index)
                            .copied()
                            .flatten()
                            .is_some()
                })
            });
            let reads = filter_reads
                || probe_keys
                    .iter()
                    .chain(extra_keys.iter().map(|k| &k[0]))
                    .any(|e| super::reads_window_column(e.as_ref(), &stream.window_columns));
            if reads {
                return Err(err!(
                    Unsupported,
                    "with {}, window_start and window_end can only be grouped by and selected, not used in a join condition",
                    window.name()
                ));
            }
        }
        let mut columns = output_columns(&parts)?;
        let mut schema = node.schema();
        if columns.len() != schema.fields().len() {
            return Err(err!(Internal, "join columns do not match its schema"));
        }
        // An enclosing join asked for the stream's event time: carry the
        // column the stream's side appended after DataFusion's.
        let plan_width = stream_plan.schema().fields().len();
        let stream_width = stream.schema.fields().len();
        if keep_event_time && stream_width > plan_width {
            let mut fields = schema.fields().to_vec();
            for c in plan_width..stream_width {
                columns.push((stream_side, c));
                fields.push(Arc::new(stream.schema.field(c).clone()));
            }
            schema = Arc::new(Schema::new(fields));
        }
        let scan_schema = Arc::new(table.schema.project(&table_side.projection)?);
        let spec = LookupJoinSpec {
            kind,
            stream_side,
            probe_keys,
            projection: table_side.projection,
            scan_schema,
            table_steps: table_side.steps,
            extra_keys,
            nulls_equal: parts.nulls_equal,
            filter: parts.filter.clone(),
            columns: columns.clone(),
            output_schema: Arc::clone(&schema),
        };
        let shared = self
            .tables
            .get(&name)
            .cloned()
            .ok_or_else(|| err!(Internal, "table '{name}' is planned but not held"))?;
        let operator = LookupJoin::new(spec, shared);
        let node = self.plan.add(Box::new(operator), vec![stream.node.clone()]);
        let of_stream = |c: &(usize, usize)| (c.0 == stream_side).then_some(c.1);
        let time_offsets: Vec<Option<i64>> = columns
            .iter()
            .map(|c| of_stream(c).and_then(|c| stream.time_offsets.get(c).copied().flatten()))
            .collect();
        Ok(Lowered {
            node: InputRef::Node(node),
            window_columns: columns
                .iter()
                .map(|c| of_stream(c).and_then(|c| stream.window_columns.get(c).copied().flatten()))
                .collect(),
            stream_columns: columns
                .iter()
                .map(|c| of_stream(c).and_then(|c| stream.stream_columns.get(c).cloned().flatten()))
                .collect(),
            window: stream.window,
            window_in_expression: stream.window_in_expression.clone(),
            time: stream.time.clone(),
            time_column: stream
                .time_column
                .and_then(|t| columns.iter().position(|&c| c == (stream_side, t))),
            time_offsets,
            changelog: false,
            session_partition: stream.session_partition.clone(),
            versioned: None,
            schema,
        })
    }
}
