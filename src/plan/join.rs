//! Lowering of joins between streams: DataFusion's `HashJoinExec` (equality
//! keys plus a filter) or `NestedLoopJoinExec` (a filter only) becomes an
//! interval join when the ON condition bounds the two sides' event times
//! from both directions.
//!
//! The time bounds are read out of the condition: each conjunct that
//! compares the two event times (`b.ts >= a.ts - INTERVAL '5' SECOND`,
//! `b.ts BETWEEN ... AND ...`, `a.ts = b.ts`, also through columns that
//! hold `ts ± interval`, as DataFusion's projection pushdown computes them)
//! narrows `lower <= right time - left time <= upper`. Those conjuncts are
//! enforced by the operator itself; the rest is evaluated on candidate
//! pairs.

use std::sync::Arc;

use datafusion::common::{JoinSide, JoinType, ScalarValue};
use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr::{PhysicalExpr, PhysicalExprRef};
use datafusion::physical_plan::joins::utils::{ColumnIndex, JoinFilter};
use datafusion::physical_plan::ExecutionPlan;

use super::join_parts::{output_columns, parts_of, table_side, JoinParts};
use super::{Lowered, Lowering};
use crate::err;
use crate::error::Result;
use crate::ops::changelog::with_op_column;
use crate::ops::graph::InputRef;
use crate::ops::interval_join::{IntervalJoin, IntervalJoinSpec};
use crate::ops::join_input::TimeSource;
use crate::ops::temporal_join::{TemporalJoin, TemporalJoinSpec};
use crate::ops::window_aggregate::GroupColumn;
use crate::ops::window_expand::WindowExpand;
use crate::time::interval::interval_to_units;
use crate::time::window::WindowSpec;

/// `right time - left time` bounds, narrowed conjunct by conjunct.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lower: Option<i64>,
    upper: Option<i64>,
}

impl Bounds {
    fn at_least(&mut self, value: i64) {
        self.lower = Some(self.lower.map_or(value, |l| l.max(value)));
    }
    fn at_most(&mut self, value: i64) {
        self.upper = Some(self.upper.map_or(value, |u| u.min(value)));
    }
}

impl Lowering<'_> {
    pub(super) fn lower_join(&mut self, node: &Arc<dyn ExecutionPlan>) -> Result<Lowered> {
        let parts = parts_of(node.as_ref())?;
        let keep_event_time = std::mem::take(&mut self.keep_event_time);
        if matches!(parts.join_type, JoinType::LeftMark | JoinType::RightMark) {
            return Err(err!(
                Unsupported,
                "this subquery (a {} join) cannot run on streams yet; write it as a JOIN with a time bound",
                parts.join_type
            ));
        }
        match (table_side(&parts.left)?, table_side(&parts.right)?) {
            (None, None) => {}
            (Some(left), Some(right)) => {
                return Err(err!(
                    Unsupported,
                    "a join of two tables ({} and {}) is not a streaming query: join a stream with a table",
                    left.name(),
                    right.name()
                ))
            }
            _ if parts.null_aware => {
                return Err(err!(
                    Unsupported,
                    "NOT IN (SELECT ... FROM a table) is not supported: whether a NULL key keeps a row out depends on the whole table; write NOT EXISTS (SELECT 1 FROM t WHERE t.k = s.k)"
                ))
            }
            (Some(table), None) => {
                return self.lower_lookup_join(node, parts, 1, table, keep_event_time)
            }
            (None, Some(table)) => {
                return self.lower_lookup_join(node, parts, 0, table, keep_event_time)
            }
        }
        self.keep_event_time = true;
        let left = self.lower(&parts.left)?;
        self.keep_event_time = true;
        let right = self.lower(&parts.right)?;
        let mut sides = [left, right];
        for side in &mut sides {
            if side.changelog {
                return Err(err!(
                    Unsupported,
                    "a join with a changelog (a GROUP BY without a window, or a join under a state TTL with outer or NOT EXISTS rows) is not supported yet; join the streams first, then aggregate"
                ));
            }
            // HOP and CUMULATE rows carry their slice: one copy per window
            // first, and then they join as TUMBLE rows do.
            self.copy_per_window(
                side,
                "joined on and selected, not used in expressions below the join",
            )?;
            match side.window {
                // A window join: the rows' time is their window's
                // (window_time), so a row is late once its window closed
                // and leaves state when the window closes on both sides.
                Some(
                    window @ (WindowSpec::Tumble(_)
                    | WindowSpec::Hop { .. }
                    | WindowSpec::Cumulate { .. }),
                ) => {
                    let offsets = super::window_offsets(window, side.time.unit);
                    side.time_offsets = side
                        .window_columns
                        .iter()
                        .map(|column| match column {
                            Some(GroupColumn::WindowStart) => offsets[0],
                            Some(GroupColumn::WindowEnd) => offsets[1],
                            Some(GroupColumn::WindowTime) => offsets[2],
                            _ => None,
                        })
                        .collect();
                    side.window = None;
                }
                Some(window) => {
                    return Err(err!(
                        Unsupported,
                        "a join of {} rows is not supported (a session's bounds are known only once it closes); join the windowed aggregates (GROUP BY window_start, window_end) of each side",
                        window.name()
                    ));
                }
                None => {}
            }
        }
        if sides.iter().any(|s| s.versioned.is_some()) {
            return self.lower_temporal_join(node, parts, sides);
        }
        if sides[0].time.unit != sides[1].time.unit {
            return Err(err!(
                Unsupported,
                "a join of streams whose event times have different units ({:?} and {:?}) is not supported; declare them with the same TIMESTAMP precision",
                sides[0].time.unit,
                sides[1].time.unit
            ));
        }
        let unit = sides[0].time.unit;
        let days_fixed = sides
            .iter()
            .all(|side| super::days_are_fixed(&side.time.window_type));
        let unit = super::TimeScale { unit, days_fixed };
        let offsets = [&sides[0].time_offsets[..], &sides[1].time_offsets[..]];
        let mut bounds = Bounds {
            lower: None,
            upper: None,
        };
        // `a.ts = b.ts` is an equality key to DataFusion.
        for (left, right) in &parts.on {
            let at = |expr: &PhysicalExprRef, side: usize| {
                expr.downcast_ref::<Column>()
                    .and_then(|c| offsets[side].get(c.index()).copied().flatten())
            };
            if let (Some(l), Some(r)) = (at(left, 0), at(right, 1)) {
                // (r + or) = (l + ol): r - l = ol - or.
                let gap = l.checked_sub(r).ok_or_else(too_far)?;
                bounds.at_least(gap);
                bounds.at_most(gap);
            }
        }
        let mut residual = Vec::new();
        if let Some(filter) = &parts.filter {
            for conjunct in split_conjunction(filter.expression()) {
                match time_comparison(conjunct.as_ref(), filter.column_indices(), offsets, unit)? {
                    Some((op, value)) => narrow(&mut bounds, op, value)?,
                    None => residual.push(Arc::clone(conjunct)),
                }
            }
        }
        // Where a TTL bounds what the condition does not, the join is
        // Flink's regular join: an updating one.
        let condition_bounds = bounds;
        // STATE_TTL hints bound what the condition does not: a left row
        // kept for its input's TTL meets right rows up to that much later,
        // a right row kept for its TTL left rows up to that much later.
        let hinted = [
            self.hinted_ttl(&sides[0].node)?,
            self.hinted_ttl(&sides[1].node)?,
        ];
        if let Some(ttl) = hinted[0] {
            bounds
                .upper
                .get_or_insert(crate::ops::source::millis_to_ticks(ttl, unit.unit));
        }
        if let Some(ttl) = hinted[1] {
            bounds.lower.get_or_insert(
                crate::ops::source::millis_to_ticks(ttl, unit.unit).saturating_neg(),
            );
        }
        // A state TTL bounds what the condition does not: rows meet rows
        // at most the TTL apart in event time, and leave state after it.
        if let Some(ttl) = self.options.state_ttl_millis.filter(|ttl| *ttl > 0) {
            let ttl = crate::ops::source::millis_to_ticks(ttl, unit.unit);
            bounds.lower.get_or_insert(ttl.saturating_neg());
            bounds.upper.get_or_insert(ttl);
        }
        let (Some(lower), Some(upper)) = (bounds.lower, bounds.upper) else {
            return Err(err!(
                Unsupported,
                "a join between streams needs a time bound on both sides, or its state grows without end: add one to the ON condition, e.g. AND b.ts BETWEEN a.ts - INTERVAL '5' SECOND AND a.ts + INTERVAL '5' SECOND, or set a state TTL (the query option stateTtlMs, or SELECT /*+ STATE_TTL('a' = '1h', 'b' = '1h') */) ({})",
                match (bounds.lower, bounds.upper) {
                    (None, None) => "this join bounds neither side's event time",
                    (Some(_), None) => "this join bounds how early the right side's time may be, not how late",
                    _ => "this join bounds how late the right side's time may be, not how early",
                }
            ));
        };
        let filter = parts.filter.as_ref().and_then(|filter| {
            (!residual.is_empty()).then(|| {
                JoinFilter::new(
                    conjunction(residual),
                    filter.column_indices().to_vec(),
                    Arc::clone(filter.schema()),
                )
            })
        });
        let times = [time_source(&sides[0]), time_source(&sides[1])];
        let [Some(left_time), Some(right_time)] = times else {
            return Err(err!(
                Internal,
                "a time-bounded join without an event-time column on each side"
            ));
        };
        let columns = output_columns(&parts)?;
        let schema = node.schema();
        if columns.len() != schema.fields().len() {
            return Err(err!(Internal, "join columns do not match its schema"));
        }
        // Outer and anti rows of an updating join come out at once and are
        // taken back at their first match: a changelog. Its inner and semi
        // rows are final, as Flink's are on append-only inputs.
        let updating = (condition_bounds.lower.is_none() || condition_bounds.upper.is_none())
            && !matches!(
                parts.join_type,
                JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi
            );
        // A side's event time survives where its rows are never padded.
        let never_null = |side: usize| match parts.join_type {
            JoinType::Inner
            | JoinType::LeftSemi
            | JoinType::LeftAnti
            | JoinType::RightSemi
            | JoinType::RightAnti => true,
            JoinType::Left => side == 0,
            JoinType::Right => side == 1,
            _ => false,
        };
        // One event time per row: the first side never padded (both sides'
        // times are different values, and a bound read later against one
        // must not be applied to the other).
        let time_side = (0..2).find(|&side| {
            !updating
                && never_null(side)
                && columns.iter().any(|&(s, c)| {
                    s == side && sides[side].time_offsets.get(c).copied().flatten().is_some()
                })
        });
        let spec = IntervalJoinSpec {
            join_type: parts.join_type,
            keys: keys_of(&parts),
            nulls_equal: parts.nulls_equal,
            null_aware: parts.null_aware,
            times: [left_time, right_time],
            lower,
            upper,
            filter,
            input_schemas: [Arc::clone(&sides[0].schema), Arc::clone(&sides[1].schema)],
            columns: columns.clone(),
            output_schema: if updating {
                with_op_column(&schema)
            } else {
                Arc::clone(&schema)
            },
            unit: unit.unit,
            late: self.options.late,
            updating,
        };
        let time = sides[0].time.clone();
        let operator = Box::new(IntervalJoin::try_new(spec)?);
        let mut joined = self.joined(operator, sides, &columns, time_side, time, schema);
        if updating {
            joined.schema = with_op_column(&joined.schema);
            let width = joined.schema.fields().len();
            joined.window_columns = vec![None; width];
            joined.stream_columns.push(None);
            joined.time_offsets.push(None);
            joined.changelog = true;
        }
        Ok(joined)
    }

    /// HOP and CUMULATE rows (which carry their slice) as one copy per
    /// window they belong to, as TUMBLE rows are; other rows as they are.
    /// `allowed` says what window columns may be used for, in the error
    /// when they are in an expression below.
    pub(super) fn copy_per_window(&mut self, side: &mut Lowered, allowed: &str) -> Result<()> {
        let Some(window @ (WindowSpec::Hop { .. } | WindowSpec::Cumulate { .. })) = side.window
        else {
            return Ok(());
        };
        if let Some(expr) = &side.window_in_expression {
            return Err(err!(
                Unsupported,
                "with {}, window_start and window_end can only be {allowed} ({expr})",
                window.name()
            ));
        }
        let at = |wanted: GroupColumn| -> Vec<usize> {
            (0..side.window_columns.len())
                .filter(|&i| side.window_columns[i] == Some(wanted))
                .collect()
        };
        let expand = WindowExpand::try_new(
            window,
            [
                at(GroupColumn::WindowStart),
                at(GroupColumn::WindowEnd),
                at(GroupColumn::WindowTime),
            ],
            crate::time::units_per_milli(side.time.unit),
            Arc::clone(&side.schema),
        )?;
        let node = self.plan.add(Box::new(expand), vec![side.node.clone()]);
        side.node = InputRef::Node(node);
        Ok(())
    }

    /// The join node over `sides`, and what it gives the plan above: its
    /// columns (`columns`: input and column there), with the event time of
    /// `time_side` (none: no event time).
    fn joined(
        &mut self,
        operator: Box<dyn crate::ops::graph::Operator>,
        sides: [Lowered; 2],
        columns: &[(usize, usize)],
        time_side: Option<usize>,
        time: super::StreamTime,
        schema: arrow::datatypes::SchemaRef,
    ) -> Lowered {
        let time_offsets: Vec<Option<i64>> = columns
            .iter()
            .map(|&(side, c)| {
                (Some(side) == time_side)
                    .then(|| sides[side].time_offsets.get(c).copied().flatten())
                    .flatten()
            })
            .collect();
        let stream_columns = columns
            .iter()
            .map(|&(side, c)| sides[side].stream_columns.get(c).cloned().flatten())
            .collect();
        let [left, right] = sides;
        let node = self.plan.add(operator, vec![left.node, right.node]);
        Lowered {
            node: InputRef::Node(node),
            window_columns: vec![None; schema.fields().len()],
            stream_columns,
            window: None,
            window_in_expression: None,
            time_column: time_offsets.iter().position(|o| *o == Some(0)),
            time_offsets,
            changelog: false,
            session_partition: None,
            versioned: None,
            schema,
            time,
        }
    }

    /// `probe JOIN versioned FOR SYSTEM_TIME AS OF probe.ts ON keys`.
    fn lower_temporal_join(
        &mut self,
        node: &Arc<dyn ExecutionPlan>,
        parts: JoinParts,
        sides: [Lowered; 2],
    ) -> Result<Lowered> {
        let versioned = match (&sides[0].versioned, &sides[1].versioned) {
            (None, Some(_)) => 1,
            (Some(_), None) => 0,
            _ => {
                return Err(err!(
                Unsupported,
                "a temporal join reads one side FOR SYSTEM_TIME AS OF the other's time, not both"
            ))
            }
        };
        let probe = 1 - versioned;
        if parts.nulls_equal {
            return Err(err!(
                Unsupported,
                "a temporal join on IS NOT DISTINCT FROM is not supported: a NULL key has no versions; join with ="
            ));
        }
        if sides[0].time.unit != sides[1].time.unit {
            return Err(err!(
                Unsupported,
                "a temporal join of streams whose event times have different units ({:?} and {:?}) is not supported; declare them with the same TIMESTAMP precision",
                sides[0].time.unit,
                sides[1].time.unit
            ));
        }
        let read = sides[versioned]
            .versioned
            .clone()
            .ok_or_else(|| err!(Internal, "a temporal join without its versioned side"))?;
        match (parts.join_type, probe) {
            (JoinType::Inner, _) | (JoinType::Left, 0) | (JoinType::Right, 1) => {}
            (kind, _) => {
                return Err(err!(
                    Unsupported,
                    "a temporal join is a JOIN or a LEFT JOIN (each row of the other side, with the version valid at its time), not a {kind} join"
                ))
            }
        }
        // The equality keys: the versioned side's primary key, exactly.
        let mut keyed: Vec<String> = parts
            .on
            .iter()
            .map(|pair| {
                let expr = if versioned == 0 { &pair.0 } else { &pair.1 };
                expr.downcast_ref::<Column>()
                    .and_then(|c| {
                        sides[versioned]
                            .stream_columns
                            .get(c.index())
                            .cloned()
                            .flatten()
                    })
                    .unwrap_or_else(|| expr.to_string())
            })
            .collect();
        let mut wanted = read.primary_key.clone();
        keyed.sort();
        wanted.sort();
        if keyed != wanted {
            return Err(err!(
                Unsupported,
                "a temporal join finds versions by the primary key ({}): join ON equality with exactly those columns, not [{}]",
                read.primary_key.join(", "),
                keyed.join(", ")
            ));
        }
        // As of the probe side's event time, by name.
        let probe_time = time_source(&sides[probe]).filter(|t| t.offset == 0);
        let probe_column =
            probe_time.and_then(|t| sides[probe].stream_columns.get(t.column).cloned().flatten());
        let as_of_column = read.as_of.rsplit('.').next().unwrap_or(&read.as_of).trim();
        // After another join the other side has several times; which one
        // `o.ts` names is not known here.
        let named = sides[probe]
            .stream_columns
            .iter()
            .flatten()
            .filter(|c| c.eq_ignore_ascii_case(as_of_column))
            .count();
        if named > 1 {
            return Err(err!(
                Unsupported,
                "FOR SYSTEM_TIME AS OF {}: the other side has several columns named {as_of_column}; join the versioned stream first",
                read.as_of
            ));
        }
        if probe_column.as_deref().map(str::to_lowercase) != Some(as_of_column.to_lowercase()) {
            return Err(err!(
                Unsupported,
                "FOR SYSTEM_TIME AS OF {}: a temporal join reads versions as of the other side's event-time column{}",
                read.as_of,
                probe_column.map_or(String::new(), |c| format!(" ({c})"))
            ));
        }
        let (Some(probe_time), Some(versioned_time)) = (probe_time, time_source(&sides[versioned]))
        else {
            return Err(err!(
                Unsupported,
                "this temporal join cannot read the versioned stream's event time; select it (r.ts)"
            ));
        };
        let columns = output_columns(&parts)?;
        let schema = node.schema();
        let mut times = [probe_time, versioned_time];
        if probe == 1 {
            times.swap(0, 1);
        }
        let spec = TemporalJoinSpec {
            join_type: parts.join_type,
            probe,
            keys: keys_of(&parts),
            times,
            filter: parts.filter.clone(),
            input_schemas: [Arc::clone(&sides[0].schema), Arc::clone(&sides[1].schema)],
            columns: columns.clone(),
            output_schema: Arc::clone(&schema),
            late: self.options.late,
        };
        let time = sides[probe].time.clone();
        let operator = Box::new(TemporalJoin::try_new(spec)?);
        Ok(self.joined(operator, sides, &columns, Some(probe), time, schema))
    }
}

/// The equality keys of each input.
fn keys_of(parts: &JoinParts) -> [Vec<PhysicalExprRef>; 2] {
    [
        parts.on.iter().map(|(l, _)| Arc::clone(l)).collect(),
        parts.on.iter().map(|(_, r)| Arc::clone(r)).collect(),
    ]
}

fn too_far() -> crate::error::RiffleError {
    err!(SqlPlan, "the join's time bounds are too large")
}

/// Where a side's event time can be read: its event-time column, or a
/// column holding it plus a constant.
fn time_source(side: &Lowered) -> Option<TimeSource> {
    let at = |(column, offset): (usize, &Option<i64>)| {
        offset.map(|offset| TimeSource { column, offset })
    };
    side.time_offsets
        .iter()
        .enumerate()
        .find(|(_, o)| **o == Some(0))
        .or_else(|| {
            side.time_offsets
                .iter()
                .enumerate()
                .find(|(_, o)| o.is_some())
        })
        .and_then(at)
}

/// Applies `right - left <op> value` to the bounds.
fn narrow(bounds: &mut Bounds, op: BinaryOp, value: i64) -> Result<()> {
    match op {
        BinaryOp::GtEq => bounds.at_least(value),
        BinaryOp::Gt => bounds.at_least(value.checked_add(1).ok_or_else(too_far)?),
        BinaryOp::LtEq => bounds.at_most(value),
        BinaryOp::Lt => bounds.at_most(value.checked_sub(1).ok_or_else(too_far)?),
        BinaryOp::Eq => {
            bounds.at_least(value);
            bounds.at_most(value);
        }
        _ => return Err(err!(Internal, "not a time comparison: {op}")),
    }
    Ok(())
}

/// `conjunct` as `right time - left time <op> value`, if it compares the
/// two sides' event times.
fn time_comparison(
    conjunct: &dyn PhysicalExpr,
    columns: &[ColumnIndex],
    offsets: [&[Option<i64>]; 2],
    unit: super::TimeScale,
) -> Result<Option<(BinaryOp, i64)>> {
    let Some(binary) = conjunct.downcast_ref::<BinaryExpr>() else {
        return Ok(None);
    };
    let op = *binary.op();
    let flipped = match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        BinaryOp::Eq => BinaryOp::Eq,
        _ => return Ok(None),
    };
    let (Some((xs, xc)), Some((ys, yc))) = (
        time_term(binary.left().as_ref(), columns, offsets, unit)?,
        time_term(binary.right().as_ref(), columns, offsets, unit)?,
    ) else {
        return Ok(None);
    };
    Ok(match (xs, ys) {
        // r + xc <op> l + yc: r - l <op> yc - xc.
        (1, 0) => Some((op, yc.checked_sub(xc).ok_or_else(too_far)?)),
        // l + xc <op> r + yc: r - l <flipped> xc - yc.
        (0, 1) => Some((flipped, xc.checked_sub(yc).ok_or_else(too_far)?)),
        _ => None,
    })
}

/// `expr` as (side, constant) when it is that side's event time plus a
/// constant.
fn time_term(
    expr: &dyn PhysicalExpr,
    columns: &[ColumnIndex],
    offsets: [&[Option<i64>]; 2],
    unit: super::TimeScale,
) -> Result<Option<(usize, i64)>> {
    if let Some(column) = expr.downcast_ref::<Column>() {
        let Some(index) = columns.get(column.index()) else {
            return Ok(None);
        };
        let side = match index.side {
            JoinSide::Left => 0,
            JoinSide::Right => 1,
            JoinSide::None => return Ok(None),
        };
        return Ok(offsets[side]
            .get(index.index)
            .copied()
            .flatten()
            .map(|offset| (side, offset)));
    }
    let Some(binary) = expr.downcast_ref::<BinaryExpr>() else {
        return Ok(None);
    };
    let sign = match binary.op() {
        BinaryOp::Plus => 1,
        BinaryOp::Minus => -1,
        _ => return Ok(None),
    };
    let term = time_term(binary.left().as_ref(), columns, offsets, unit)?;
    let constant = interval_ticks(binary.right().as_ref(), unit)?;
    if let (Some((side, offset)), Some(ticks)) = (term, constant) {
        let ticks = if sign < 0 {
            ticks.checked_neg()
        } else {
            Some(ticks)
        };
        return Ok(Some((
            side,
            ticks
                .and_then(|t| offset.checked_add(t))
                .ok_or_else(too_far)?,
        )));
    }
    if sign > 0 {
        // INTERVAL ... + ts
        let term = time_term(binary.right().as_ref(), columns, offsets, unit)?;
        let constant = interval_ticks(binary.left().as_ref(), unit)?;
        if let (Some((side, offset)), Some(ticks)) = (term, constant) {
            return Ok(Some((side, offset.checked_add(ticks).ok_or_else(too_far)?)));
        }
    }
    Ok(None)
}

/// An interval literal in ticks of `scale`'s unit (`None` for one with
/// days where days are not fixed: across a daylight-saving change, a day
/// added in a time zone is 23 or 25 hours).
pub(super) fn interval_ticks(
    expr: &dyn PhysicalExpr,
    scale: super::TimeScale,
) -> Result<Option<i64>> {
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return Ok(None);
    };
    let interval = match literal.value() {
        ScalarValue::IntervalMonthDayNano(Some(v)) => *v,
        ScalarValue::IntervalDayTime(Some(v)) => arrow::datatypes::IntervalMonthDayNano::new(
            0,
            v.days,
            i64::from(v.milliseconds) * 1_000_000,
        ),
        ScalarValue::IntervalYearMonth(Some(v)) => {
            arrow::datatypes::IntervalMonthDayNano::new(*v, 0, 0)
        }
        // A number added to an event time is one in BIGINT epoch
        // milliseconds (SQL adds no number to a TIMESTAMP).
        ScalarValue::Int64(Some(v)) if scale.unit == arrow::datatypes::TimeUnit::Millisecond => {
            return Ok(Some(*v))
        }
        _ => return Ok(None),
    };
    if interval.days != 0 && !scale.days_fixed {
        return Ok(None);
    }
    interval_to_units(interval, scale.unit, "a join's time bound").map(Some)
}
