//! Flink's Window Top-N and window deduplication: `ROW_NUMBER()` (or
//! `RANK()`, `DENSE_RANK()`) `OVER (PARTITION BY window_start, window_end,
//! keys ORDER BY ...)` over the rows of windows (a window table function's
//! rows, or a windowed aggregate's results), usually under
//! `WHERE rownum <= N`.
//!
//! A window's rows are held until the watermark closes it (the window
//! rule: `W >= window_end - 1 ms`), then come out ranked within their
//! partition, once, and the window's state goes. Rows of a closed window
//! are late.
//!
//! With a limit (`rownum <= N` right above), a window's rows are cut back
//! to those ranked at most N whenever they have doubled since the last cut,
//! so its state stays about 2N rows per partition: a row ranked past N
//! now can only fall further as rows arrive.
//!
//! Rows that tie on the ORDER BY keep their arrival order, so `ROW_NUMBER`
//! among ties (which SQL leaves open) is the same for any split of the
//! input into pushes.
//!
//! Window table function rows keep their own event time, up to a window
//! behind the watermark that closes their window: the output watermark is
//! held back by the longest window, so they are never late after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows as KeyRows, SortField};
use datafusion::physical_expr::{LexOrdering, PhysicalExprRef};

use super::aggregate_node::{late_batch, LatePolicy};
use super::gather::gather;
use super::graph::{Operator, OperatorMetrics, Output, Rows, WindowMetrics};
use super::join_state::{self, SideRows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::watermark::{END_OF_INPUT, NO_WATERMARK};
use crate::time::{units_per_milli, EventTime};

/// Which ranking function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankKind {
    /// 1, 2, 3, ... within a partition.
    RowNumber,
    /// Ties share a rank; the next rank skips (1, 1, 3).
    Rank,
    /// Ties share a rank; the next rank follows (1, 1, 2).
    DenseRank,
}

impl RankKind {
    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            RankKind::RowNumber => "row_number",
            RankKind::Rank => "rank",
            RankKind::DenseRank => "dense_rank",
        }
    }
}

/// One window ranking, as planned.
#[derive(Debug)]
pub struct WindowRankSpec {
    /// The ranking function.
    pub kind: RankKind,
    /// PARTITION BY, over the input (window_start and window_end among them).
    pub partition: Vec<PhysicalExprRef>,
    /// ORDER BY, over the input.
    pub order: LexOrdering,
    /// The input column holding each row's window end.
    pub window_end: usize,
    /// Only rows ranked at most this come out (`rownum <= N` above).
    pub limit: Option<u64>,
    /// The input's schema.
    pub input_schema: SchemaRef,
    /// The input's columns, then the rank (UInt64).
    pub output_schema: SchemaRef,
    /// Unit of the event times.
    pub unit: TimeUnit,
    /// What happens to late rows.
    pub late: LatePolicy,
    /// How far the output watermark is held back: the longest window of
    /// rows that carry their own event time (0 for windowed results).
    pub hold: i64,
}

/// Rows of one window, in arrival order.
#[derive(Debug, Clone)]
struct WindowRows {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// Rows past which the window is cut back to its top rows.
    cut_at: usize,
}

impl Default for WindowRows {
    fn default() -> Self {
        Self {
            batches: Vec::new(),
            rows: 0,
            cut_at: FIRST_CUT,
        }
    }
}

/// The operator.
#[derive(Debug)]
pub struct WindowRank {
    spec: Arc<WindowRankSpec>,
    /// Open windows by end.
    windows: BTreeMap<EventTime, WindowRows>,
    rows_in: u64,
    late: u64,
    emitted: u64,
}

/// Rows a window holds before its first cut.
const FIRST_CUT: usize = 1024;
/// Batches a window keeps before they are put together.
const MAX_BATCHES: usize = 64;

impl WindowRank {
    /// An empty operator; fails when a PARTITION BY or ORDER BY value has
    /// a type rows cannot be ranked by.
    pub fn try_new(spec: WindowRankSpec) -> Result<Self> {
        let mut types = Vec::new();
        for expr in spec
            .partition
            .iter()
            .chain(spec.order.iter().map(|s| &s.expr))
        {
            types.push(expr.data_type(&spec.input_schema)?);
        }
        let fields: Vec<SortField> = types.iter().cloned().map(SortField::new).collect();
        if !RowConverter::supports_fields(&fields) {
            return Err(err!(
                Unsupported,
                "{}() cannot order or group rows by values of these types: {types:?}",
                spec.kind.name()
            ));
        }
        Ok(Self::empty(Arc::new(spec)))
    }

    /// Whether evaluating its PARTITION BY or ORDER BY can fail.
    fn keys_may_fail(&self) -> bool {
        let spec = &self.spec;
        spec.partition
            .iter()
            .chain(spec.order.iter().map(|s| &s.expr))
            .any(super::fallible::expr_may_fail)
    }

    fn empty(spec: Arc<WindowRankSpec>) -> Self {
        Self {
            spec,
            windows: BTreeMap::new(),
            rows_in: 0,
            late: 0,
            emitted: 0,
        }
    }

    /// Each row's window end, in event-time ticks.
    fn ends(&self, batch: &RecordBatch) -> Result<Vec<EventTime>> {
        let column = batch.column(self.spec.window_end);
        let raw = match column.data_type() {
            DataType::Int64 => Arc::clone(column),
            DataType::Timestamp(..) => arrow::compute::cast(column, &DataType::Int64)?,
            other => return Err(err!(Internal, "a window end of type {other}, not a time")),
        };
        let raw = raw.as_primitive::<Int64Type>();
        if raw.null_count() > 0 {
            return Err(err!(Internal, "a row without a window end"));
        }
        Ok(raw.values().to_vec())
    }

    /// Whether a window ending at `end` is closed at `watermark`.
    fn closed(&self, end: EventTime, watermark: EventTime) -> bool {
        i128::from(watermark) >= i128::from(end) - i128::from(units_per_milli(self.spec.unit))
    }

    /// `rows` (one window's, in arrival order) ranked: the positions to
    /// keep in output order and each one's rank, those past the limit left
    /// out.
    fn ranked(&self, rows: &RecordBatch) -> Result<(UInt32Array, UInt64Array)> {
        let spec = &self.spec;
        let evaluate = |expr: &PhysicalExprRef| super::evaluate(expr.as_ref(), rows);
        let partition: Vec<ArrayRef> =
            spec.partition.iter().map(evaluate).collect::<Result<_>>()?;
        let order: Vec<ArrayRef> = spec
            .order
            .iter()
            .map(|sort| evaluate(&sort.expr))
            .collect::<Result<_>>()?;
        let encode = |arrays: &[ArrayRef], fields: Vec<SortField>| -> Result<Option<KeyRows>> {
            if arrays.is_empty() {
                return Ok(None);
            }
            Ok(Some(RowConverter::new(fields)?.convert_columns(arrays)?))
        };
        let partition_rows = encode(
            &partition,
            partition
                .iter()
                .map(|a| SortField::new(a.data_type().clone()))
                .collect(),
        )?;
        let order_rows = encode(
            &order,
            order
                .iter()
                .zip(spec.order.iter())
                .map(|(a, sort)| SortField::new_with_options(a.data_type().clone(), sort.options))
                .collect(),
        )?;
        fn key(rows: &Option<KeyRows>, i: usize) -> &[u8] {
            rows.as_ref().map_or(&[], |r| r.row(i).data())
        }
        let mut positions: Vec<u32> = (0..rows.num_rows() as u32).collect();
        // Stable: ties keep their arrival order.
        positions.sort_by(|&a, &b| {
            key(&partition_rows, a as usize)
                .cmp(key(&partition_rows, b as usize))
                .then_with(|| key(&order_rows, a as usize).cmp(key(&order_rows, b as usize)))
        });
        let (mut kept, mut ranks) = (Vec::new(), Vec::new());
        let (mut number, mut rank, mut dense) = (0u64, 0u64, 0u64);
        for (n, &at) in positions.iter().enumerate() {
            let at_usize = at as usize;
            let new_partition = n == 0
                || key(&partition_rows, at_usize)
                    != key(&partition_rows, positions[n - 1] as usize);
            let tie = !new_partition
                && key(&order_rows, at_usize) == key(&order_rows, positions[n - 1] as usize);
            if new_partition {
                (number, rank, dense) = (0, 0, 0);
            }
            number += 1;
            if !tie {
                rank = number;
                dense += 1;
            }
            let value = match spec.kind {
                RankKind::RowNumber => number,
                RankKind::Rank => rank,
                RankKind::DenseRank => dense,
            };
            if spec.limit.is_none_or(|limit| value <= limit) {
                kept.push(at);
                ranks.push(value);
            }
        }
        Ok((UInt32Array::from(kept), UInt64Array::from(ranks)))
    }

    /// One window's rows as one batch.
    fn window_batch(&self, window: &WindowRows) -> Result<RecordBatch> {
        Ok(concat_batches(&self.spec.input_schema, &window.batches)?)
    }

    /// A window's rows cut back to those still ranked within the limit,
    /// in arrival order (so later ties still rank after them).
    fn cut(&self, window: &WindowRows) -> Result<WindowRows> {
        let rows = self.window_batch(window)?;
        let (kept, _) = self.ranked(&rows)?;
        let mut kept: Vec<u32> = kept.values().to_vec();
        kept.sort_unstable();
        let batch = take_rows(&rows, &UInt32Array::from(kept))?;
        let count = batch.num_rows();
        Ok(WindowRows {
            batches: vec![batch],
            rows: count,
            cut_at: count.saturating_mul(2).max(FIRST_CUT),
        })
    }
}

/// The rows of `batch` at `positions`.
fn take_rows(batch: &RecordBatch, positions: &UInt32Array) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| gather(c, positions))
        .collect::<Result<Vec<_>>>()?;
    let options =
        arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(positions.len()));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &options,
    )?)
}

impl Operator for WindowRank {
    fn state_kind(&self) -> Option<&'static str> {
        Some("window_rank")
    }

    fn may_fail(&self) -> bool {
        self.keys_may_fail()
    }

    fn process(&mut self, input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        if input != 0 {
            return Err(err!(Internal, "a window ranking has one input"));
        }
        let batch = &rows.batch;
        let ends = self.ends(batch)?;
        let watermarks = rows.row_watermarks.materialize(batch.num_rows());
        let mut by_end: BTreeMap<EventTime, Vec<u32>> = BTreeMap::new();
        let mut late = Vec::new();
        for (row, &end) in ends.iter().enumerate() {
            if self.closed(end, watermarks.value(row)) {
                late.push(row as u32);
            } else {
                by_end.entry(end).or_default().push(row as u32);
            }
        }
        // Everything that can fail before the state changes: a row whose
        // keys fail to evaluate fails this push, not a later window close.
        if self.keys_may_fail() {
            self.ranked(batch)?;
        }
        let mut added = Vec::with_capacity(by_end.len());
        for (end, positions) in by_end {
            added.push((end, take_rows(batch, &UInt32Array::from(positions))?));
        }
        let mut rebuilt = Vec::new();
        for (end, part) in &added {
            let Some(window) = self.windows.get(end) else {
                continue;
            };
            let cut_due =
                self.spec.limit.is_some() && window.rows + part.num_rows() > window.cut_at;
            if !cut_due && window.batches.len() < MAX_BATCHES {
                continue;
            }
            let mut grown = window.clone();
            grown.rows += part.num_rows();
            grown.batches.push(part.clone());
            let grown = if cut_due {
                self.cut(&grown)?
            } else {
                WindowRows {
                    batches: vec![self.window_batch(&grown)?],
                    ..grown
                }
            };
            rebuilt.push((*end, grown));
        }
        if self.spec.late == LatePolicy::SideOutput && rows.origin.is_some() {
            if let Some(late) = late_batch(&rows, &late)? {
                out.late(late);
            }
        }
        self.rows_in += batch.num_rows() as u64;
        self.late += late.len() as u64;
        let rebuilt_ends: Vec<EventTime> = rebuilt.iter().map(|(end, _)| *end).collect();
        for (end, part) in added {
            if rebuilt_ends.contains(&end) {
                continue;
            }
            let window = self.windows.entry(end).or_default();
            window.rows += part.num_rows();
            window.batches.push(part);
        }
        for (end, window) in rebuilt {
            self.windows.insert(end, window);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Output) -> Result<EventTime> {
        let closed: Vec<EventTime> = self
            .windows
            .keys()
            .copied()
            .take_while(|&end| self.closed(end, watermark))
            .collect();
        // Build every closed window's output before any leaves state.
        let mut batches = Vec::with_capacity(closed.len());
        for end in &closed {
            let rows = self.window_batch(&self.windows[end])?;
            let (positions, ranks) = self.ranked(&rows)?;
            let mut columns = take_rows(&rows, &positions)?.columns().to_vec();
            columns.push(Arc::new(ranks));
            batches.push(RecordBatch::try_new(
                Arc::clone(&self.spec.output_schema),
                columns,
            )?);
        }
        for (end, batch) in closed.iter().zip(batches) {
            self.windows.remove(end);
            self.emitted += 1;
            out.emit(batch);
        }
        Ok(match watermark {
            NO_WATERMARK | END_OF_INPUT => watermark,
            w => w.saturating_sub(self.spec.hold).max(NO_WATERMARK + 1),
        })
    }

    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        let spec = &self.spec;
        let mut batches = Vec::new();
        let mut ends = Vec::new();
        for (&end, window) in &self.windows {
            for batch in &window.batches {
                ends.extend(std::iter::repeat_n(end, batch.num_rows()));
                batches.push(batch.clone());
            }
        }
        let rows = SideRows {
            batch: concat_batches(&spec.input_schema, &batches)?,
            flags: vec![false; ends.len()],
            times: ends,
            rows_in: self.rows_in,
            late: self.late,
        };
        let mut state = join_state::encode([rows, SideRows::empty(&spec.input_schema)])?;
        state.meta["windows_emitted"] = serde_json::json!(self.emitted);
        // Each window's next cut, so a restored ranking cuts where the
        // uninterrupted one would.
        let cuts: Vec<[i64; 2]> = self
            .windows
            .iter()
            .map(|(&end, w)| [end, w.cut_at as i64])
            .collect();
        state.meta["cut_at"] = serde_json::json!(cuts);
        Ok(Some(state))
    }

    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        let mut restored = WindowRank::empty(Arc::clone(&self.spec));
        let Some(state) = state else {
            return Ok(Box::new(restored));
        };
        let schemas = [
            Arc::clone(&self.spec.input_schema),
            Arc::clone(&self.spec.input_schema),
        ];
        let [rows, _] = join_state::decode(state, &schemas, "window ranking")?;
        let ends = self.ends(&rows.batch)?;
        if ends != rows.times {
            return Err(err!(
                CorruptCheckpoint,
                "window ranking state: rows filed under another window than their own"
            ));
        }
        let mut start = 0;
        while start < ends.len() {
            let end = ends[start];
            let count = ends[start..].iter().take_while(|&&e| e == end).count();
            let window = restored.windows.entry(end).or_default();
            window.batches.push(rows.batch.slice(start, count));
            window.rows += count;
            start += count;
        }
        let corrupt = || err!(CorruptCheckpoint, "window ranking state: bad cut_at");
        let cuts = state
            .meta
            .get("cut_at")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(corrupt)?;
        if cuts.len() != restored.windows.len() {
            return Err(corrupt());
        }
        for cut in cuts {
            let pair = cut
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(corrupt)?;
            let (end, at) = (pair[0].as_i64(), pair[1].as_u64());
            let window = end
                .and_then(|end| restored.windows.get_mut(&end))
                .ok_or_else(corrupt)?;
            // At least the rows held: a crafted value cannot stop the cuts.
            window.cut_at = usize::try_from(at.ok_or_else(corrupt)?)
                .map_err(|_| corrupt())?
                .clamp(
                    window.rows.max(FIRST_CUT),
                    window.rows.max(FIRST_CUT).saturating_mul(2),
                );
        }
        restored.rows_in = rows.rows_in;
        restored.late = rows.late;
        restored.emitted = state
            .meta
            .get("windows_emitted")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                err!(
                    CorruptCheckpoint,
                    "window ranking state lacks windows_emitted"
                )
            })?;
        Ok(Box::new(restored))
    }

    fn metrics(&self) -> OperatorMetrics {
        let held: usize = self.windows.values().map(|w| w.rows).sum();
        OperatorMetrics {
            window: WindowMetrics {
                rows_in: self.rows_in,
                late_rows_dropped: self.late,
                windows_emitted: self.emitted,
            },
            open_windows: self.windows.len(),
            state_bytes: held * join_state::row_bytes(&self.spec.input_schema),
            joins: Vec::new(),
            lookups: Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let spec = &self.spec;
        let partition: Vec<String> = spec.partition.iter().map(|e| e.to_string()).collect();
        let order: Vec<String> = spec.order.iter().map(|s| s.to_string()).collect();
        let mut line = format!(
            "WindowRank: {}() partition by [{}] order by [{}]",
            spec.kind.name(),
            partition.join(", "),
            order.join(", ")
        );
        if let Some(limit) = spec.limit {
            line.push_str(&format!(", top {limit}"));
        }
        line.push_str(", each window's rows ranked when it closes");
        line
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }
}
