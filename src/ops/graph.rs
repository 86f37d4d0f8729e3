//! The operator graph: every query is a DAG of streaming operators.
//!
//! ```text
//!  stream trades ──► StreamScan ──► Chain ──► WindowAggregate ──► (query 0)
//!        │
//!        └─────────► StreamScan ──► Chain ──┐
//!                                           ├─► Union ──► UpdatingAggregate ──► (query 1)
//!  stream orders ──► StreamScan ──► Chain ──┘
//! ```
//!
//! Nodes have any number of inputs and one output, behind one small
//! lifecycle interface ([`Operator`]): process a batch on input `i`, advance
//! the watermark, tick the wall clock, snapshot, restore, metrics, explain.
//! Each node has a stable id derived from the plan (`q0/2`: node 2 of query
//! 0), which keys its state in a checkpoint.
//!
//! # Messages and watermarks
//! Edges carry [`Message`]s in order: rows (each with the watermark in
//! force before it, so windows close row by row inside a push), late rows
//! handed back to the application, and watermarks. A node with several
//! inputs sees the minimum of its inputs' watermarks (Flink's rule); the
//! graph keeps every edge's watermark and caps the per-row watermarks of a
//! batch by the other inputs'. A node forwards a watermark after what it
//! completes, so results always travel ahead of the watermark that closed
//! them.
//!
//! # Streams fed by `INSERT INTO`
//! An `INSERT INTO stream` job's last node hands its rows to every reader
//! of the stream, as the stream's own pushes are handed. The readers see
//! the minimum of the feeders' watermarks (each job's output watermark, and
//! the pushes' once any arrived), and each batch's per-row watermarks
//! capped by the other feeders'. No watermark of its own is kept for such
//! a stream: it is derived from what the feeders' checkpoints hold.
//!
//! # Order of work in a push
//! A push runs every node it reaches to completion, in one fixed
//! topological order (a job's node before the readers of the stream it
//! feeds): first every node with no stateful node upstream
//! (the scans and the expressions before the aggregates of every query),
//! then the stateful nodes and what follows them. So an error in any
//! expression before an aggregate, in any query, fails the push before any
//! state has changed.
//!
//! # All or nothing
//! Every push-like call is a transaction ([`Graph::atomically`]): when it
//! fails, every edge's watermark goes back to where it was, and so does
//! the state of every stateful node it changed. A stateful node's state is
//! imaged (its snapshot) before the call first reaches it, but only when a
//! node that may fail ([`Operator::may_fail`]) runs at or after it in the
//! push order: what runs before the first stateful node fails before any
//! state changes, and a query whose steps after its aggregate cannot fail
//! (column references, comparisons, count/sum/min/max/avg) pays nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, UInt32Array};
use arrow::datatypes::{SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::watermark::{convert_watermark, NO_WATERMARK};
use crate::time::EventTime;

/// Identifies a query within one engine.
pub type QueryId = u32;

/// The watermark in force before each row of a batch.
#[derive(Debug, Clone)]
pub enum RowWatermarks {
    /// One value per row, non-decreasing.
    PerRow(Arc<Int64Array>),
    /// The same value for every row (rows emitted by an operator).
    Constant(EventTime),
}

impl RowWatermarks {
    /// One value per row.
    pub fn materialize(&self, rows: usize) -> Arc<Int64Array> {
        match self {
            RowWatermarks::PerRow(values) => Arc::clone(values),
            RowWatermarks::Constant(value) => Arc::new(Int64Array::from_value(*value, rows)),
        }
    }

    /// Each value through `convert` (a change of unit, which keeps order).
    fn mapped(self, convert: impl Fn(EventTime) -> EventTime) -> Self {
        match self {
            RowWatermarks::Constant(value) => RowWatermarks::Constant(convert(value)),
            RowWatermarks::PerRow(values) => RowWatermarks::PerRow(Arc::new(values.unary(convert))),
        }
    }

    /// Each value raised to at least `floor`.
    fn floored(self, floor: EventTime) -> Self {
        match self {
            RowWatermarks::Constant(value) => RowWatermarks::Constant(value.max(floor)),
            RowWatermarks::PerRow(values) => {
                if values.values().iter().all(|&v| v >= floor) {
                    RowWatermarks::PerRow(values)
                } else {
                    RowWatermarks::PerRow(Arc::new(values.unary(|v| v.max(floor))))
                }
            }
        }
    }

    /// Each value capped at `limit` (another input's watermark).
    fn capped(self, limit: EventTime) -> Self {
        match self {
            RowWatermarks::Constant(value) => RowWatermarks::Constant(value.min(limit)),
            RowWatermarks::PerRow(values) => {
                if values.values().iter().all(|&v| v <= limit) {
                    RowWatermarks::PerRow(values)
                } else {
                    RowWatermarks::PerRow(Arc::new(values.unary(|v| v.min(limit))))
                }
            }
        }
    }
}

/// Where rows came from, to hand late rows back as they were pushed.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The pushed batch, in the stream's schema.
    pub batch: RecordBatch,
    /// Position in `batch` of each row of the batch carrying this origin.
    pub rows: Arc<UInt32Array>,
}

impl Origin {
    /// Every row of `batch`, in order.
    pub fn of(batch: &RecordBatch) -> Result<Self> {
        let rows = u32::try_from(batch.num_rows())
            .map_err(|_| err!(InvalidInput, "a push holds more than 2^32 rows"))?;
        Ok(Self {
            batch: batch.clone(),
            rows: Arc::new(UInt32Array::from_iter_values(0..rows)),
        })
    }
}

/// Rows travelling along an edge.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The rows, in the producer's output schema.
    pub batch: RecordBatch,
    /// Watermark in force before each row.
    pub row_watermarks: RowWatermarks,
    /// Watermark after the batch (the push's, for rows from a stream).
    pub watermark_after: EventTime,
    /// Event time of each row in the stream's unit: set on rows straight
    /// from a stream, for the scan that assigns windows.
    pub event_times: Option<Arc<Vec<EventTime>>>,
    /// Set where late rows must be handed back as pushed.
    pub origin: Option<Origin>,
}

impl Rows {
    /// `batch` in place of these rows, its rows being theirs at `indices`
    /// (in order, repeats allowed; `None`: the same rows): the per-row
    /// watermarks and origins are taken along.
    pub fn with_rows_at(self, batch: RecordBatch, indices: Option<&UInt32Array>) -> Result<Rows> {
        let Some(indices) = indices else {
            return Ok(Rows {
                batch,
                event_times: None,
                ..self
            });
        };
        let row_watermarks = match self.row_watermarks {
            RowWatermarks::PerRow(values) => {
                let taken = super::gather::gather(&(values as ArrayRef), indices)?;
                let values = taken
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .cloned()
                    .ok_or_else(|| err!(Internal, "per-row watermarks lost"))?;
                RowWatermarks::PerRow(Arc::new(values))
            }
            constant => constant,
        };
        let origin = match self.origin {
            Some(origin) => {
                let taken = super::gather::gather(&(origin.rows as ArrayRef), indices)?;
                let rows = taken
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .cloned()
                    .ok_or_else(|| err!(Internal, "row origins lost"))?;
                Some(Origin {
                    batch: origin.batch,
                    rows: Arc::new(rows),
                })
            }
            None => None,
        };
        Ok(Rows {
            batch,
            row_watermarks,
            watermark_after: self.watermark_after,
            event_times: None,
            origin,
        })
    }
}

/// What travels along an edge.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Rows(Rows),
    /// Late input rows for the application (side output), passed through
    /// to the query's output untouched.
    Late(RecordBatch),
    /// The watermark of the edge moved (or was restated) to this value.
    Watermark(EventTime),
}

/// Something a query emitted.
#[derive(Debug, Clone)]
pub enum Emitted {
    /// Result rows.
    Rows(RecordBatch),
    /// Late input rows, in the stream's schema (side output).
    Late(RecordBatch),
}

/// What an operator emits while handling one call.
#[derive(Debug)]
pub struct Output {
    messages: Vec<Message>,
    /// The node's output watermark before this call: the watermark in force
    /// downstream before the rows it emits now.
    watermark: EventTime,
}

impl Output {
    fn new(watermark: EventTime) -> Self {
        Self {
            messages: Vec::new(),
            watermark,
        }
    }

    /// Emits result rows produced by the operator (a closed window, a
    /// change), all at the node's current output watermark.
    pub fn emit(&mut self, batch: RecordBatch) {
        if batch.num_rows() == 0 {
            return;
        }
        self.messages.push(Message::Rows(Rows {
            batch,
            row_watermarks: RowWatermarks::Constant(self.watermark),
            watermark_after: self.watermark,
            event_times: None,
            origin: None,
        }));
    }

    /// Emits rows that keep their input's per-row information.
    pub fn forward(&mut self, rows: Rows) {
        self.messages.push(Message::Rows(rows));
    }

    /// Emits late input rows for the application.
    pub fn late(&mut self, batch: RecordBatch) {
        self.messages.push(Message::Late(batch));
    }
}

/// Counters of one aggregate (window, session or updating).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowMetrics {
    /// Rows that reached the aggregate (after WHERE).
    pub rows_in: u64,
    /// Rows dropped because their slice had already closed.
    pub late_rows_dropped: u64,
    /// Windows emitted.
    pub windows_emitted: u64,
}

/// Counters of one node (or, summed, of a query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorMetrics {
    /// Window counters (zero for stateless nodes).
    pub window: WindowMetrics,
    /// Windows (or groups) holding state.
    pub open_windows: usize,
    /// Approximate bytes of operator state.
    pub state_bytes: usize,
    /// Per join: its sides' counters.
    pub joins: Vec<crate::metrics::JoinMetrics>,
    /// Per lookup join: its counters.
    pub lookups: Vec<crate::metrics::LookupMetrics>,
}

impl OperatorMetrics {
    fn add(&mut self, other: &OperatorMetrics) {
        self.window.rows_in += other.window.rows_in;
        self.window.late_rows_dropped += other.window.late_rows_dropped;
        self.window.windows_emitted += other.window.windows_emitted;
        self.open_windows += other.open_windows;
        self.state_bytes += other.state_bytes;
        self.joins.extend(other.joins.iter().cloned());
        self.lookups.extend(other.lookups.iter().cloned());
    }
}

/// A streaming operator: a node of the graph.
pub trait Operator: std::fmt::Debug {
    /// The kind of state it checkpoints (`window`, `session`, `updating`,
    /// `refining`), or `None` for a stateless operator.
    fn state_kind(&self) -> Option<&'static str> {
        None
    }

    /// Whether handling a call can fail at run time (an expression that
    /// divides by zero, an aggregate that overflows). Conservative: `true`
    /// unless known otherwise. The graph keeps an undo image of a stateful
    /// node only when a node that runs after it may fail.
    fn may_fail(&self) -> bool {
        true
    }

    /// Handles rows arriving on input `input`.
    fn process(&mut self, input: usize, rows: Rows, out: &mut Output) -> Result<()>;

    /// The (minimum over inputs) watermark is now `watermark`: emits what it
    /// completes and returns the watermark to forward (an operator may hold
    /// it back; it never exceeds `watermark`).
    fn on_watermark(&mut self, watermark: EventTime, _out: &mut Output) -> Result<EventTime> {
        Ok(watermark)
    }

    /// Wall-clock tick (epoch ms), for periodic emission.
    fn on_wall_clock(&mut self, _now_millis: i64, _out: &mut Output) -> Result<()> {
        Ok(())
    }

    /// Whether it wants wall-clock ticks.
    fn needs_clock(&self) -> bool {
        false
    }

    /// Its state, leaving it as it was (`None` when stateless).
    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        Ok(None)
    }

    /// A new operator with the same configuration and `state` (from
    /// [`Operator::snapshot`] of the same node). `self` is left untouched,
    /// so a graph can build every restored node before swapping any in.
    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>>;

    /// Counters and state size.
    fn metrics(&self) -> OperatorMetrics {
        OperatorMetrics::default()
    }

    /// One line for EXPLAIN.
    fn describe(&self) -> String;

    /// The schema of the rows it emits.
    fn output_schema(&self) -> SchemaRef;
}

/// Where a planned node's input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputRef {
    /// A declared stream.
    Stream(String),
    /// An earlier node of the same plan, by position.
    Node(usize),
}

/// A node as the planner makes it, before it joins the graph.
#[derive(Debug)]
pub struct PlannedNode {
    /// The operator.
    pub operator: Box<dyn Operator>,
    /// Its inputs, in port order.
    pub inputs: Vec<InputRef>,
}

/// A query's nodes as planned: inputs point only to earlier nodes; the
/// last node is the query's output.
#[derive(Debug, Default)]
pub struct QueryPlan {
    /// The nodes, each after its inputs.
    pub nodes: Vec<PlannedNode>,
}

impl QueryPlan {
    /// Appends a node; returns its position.
    pub fn add(&mut self, operator: Box<dyn Operator>, inputs: Vec<InputRef>) -> usize {
        self.nodes.push(PlannedNode { operator, inputs });
        self.nodes.len() - 1
    }

    /// The output node's operator.
    pub fn output(&self) -> Result<&dyn Operator> {
        self.nodes
            .last()
            .map(|n| n.operator.as_ref())
            .ok_or_else(|| err!(Internal, "a query plan without nodes"))
    }

    /// The streams the plan reads, each once, in order of first use.
    pub fn streams(&self) -> Vec<String> {
        let mut streams: Vec<String> = Vec::new();
        for node in &self.nodes {
            for input in &node.inputs {
                if let InputRef::Stream(name) = input {
                    if !streams.contains(name) {
                        streams.push(name.clone());
                    }
                }
            }
        }
        streams
    }

    /// All nodes, one per line, inputs before the nodes that read them;
    /// `is_view` tells views from streams among the inputs.
    pub fn describe(&self, is_view: &dyn Fn(&str) -> bool) -> String {
        describe_nodes(
            self.nodes
                .iter()
                .map(|n| (n.operator.as_ref(), n.inputs.as_slice())),
            is_view,
        )
    }
}

/// EXPLAIN text for nodes in plan order: a linear plan reads as a list;
/// a node with several inputs names them.
fn describe_nodes<'a>(
    nodes: impl Iterator<Item = (&'a dyn Operator, &'a [InputRef])>,
    is_view: &dyn Fn(&str) -> bool,
) -> String {
    let mut lines = Vec::new();
    let mut last_schema: Option<SchemaRef> = None;
    for (position, (operator, inputs)) in nodes.enumerate() {
        let linear = inputs.len() == 1 && inputs[0] == InputRef::Node(position.wrapping_sub(1));
        let mut line = format!("[{position}] {}", operator.describe());
        if !linear {
            let names: Vec<String> = inputs
                .iter()
                .map(|input| match input {
                    InputRef::Stream(name) if is_view(name) => format!("view {name}"),
                    InputRef::Stream(name) => format!("stream {name}"),
                    InputRef::Node(n) => format!("[{n}]"),
                })
                .collect();
            line.push_str(&format!(" ← {}", names.join(", ")));
        }
        lines.push(format!("  └ {line}"));
        last_schema = Some(operator.output_schema());
    }
    if let Some(schema) = last_schema {
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        lines.push(format!("  └ Output: [{}]", columns.join(", ")));
    }
    lines.join("\n")
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    to: usize,
    port: usize,
}

#[derive(Debug)]
struct Node {
    /// Stable id, e.g. `q0/2`.
    id: String,
    operator: Box<dyn Operator>,
    /// Watermark of each input edge.
    input_watermarks: Vec<EventTime>,
    /// Watermark last forwarded downstream.
    output_watermark: EventTime,
    edges: Vec<Edge>,
}

/// A node's watermarks and state in a checkpoint.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// The node's stable id.
    pub id: String,
    /// Watermark of each input edge.
    pub input_watermarks: Vec<EventTime>,
    /// Watermark it last forwarded.
    pub output_watermark: EventTime,
    /// Its state kind and state, if stateful.
    pub state: Option<(&'static str, OperatorState)>,
}

/// A node's entry in a checkpoint being restored.
#[derive(Debug, Clone)]
pub struct NodeRestore {
    /// The node's stable id.
    pub id: String,
    /// Watermark of each input edge.
    pub input_watermarks: Vec<EventTime>,
    /// Watermark it last forwarded.
    pub output_watermark: EventTime,
    /// Its state kind and state, if stateful.
    pub state: Option<(String, OperatorState)>,
}

/// Every query's operators, wired to the streams they read.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    /// Readers of each stream.
    streams: BTreeMap<String, Vec<Edge>>,
    /// Watermark last sent from each stream.
    stream_watermarks: BTreeMap<String, EventTime>,
    /// Node indices in the order a push runs them.
    order: Vec<usize>,
    /// Each query's nodes: they are added together, so a range; the last
    /// is its output.
    queries: Vec<(QueryId, std::ops::RangeInclusive<usize>)>,
    /// Each view's nodes, likewise; the last is the view's output.
    views: BTreeMap<String, std::ops::RangeInclusive<usize>>,
    /// Each `INSERT INTO`'s nodes; its last node's rows and watermarks are
    /// the target stream's, beside the stream's own pushes.
    inserts: Vec<Insert>,
    /// Per node: whether a push keeps an undo image of its state (it is
    /// stateful and a node that may fail runs at or after it).
    keeps_undo: Vec<bool>,
    /// The open transaction, during a push-like call.
    transaction: Option<Transaction>,
    /// Tests only: the node that fails whenever a call reaches it.
    injected_failure: Option<String>,
}

/// What a failed call restores: every watermark as it was, and the state
/// of each stateful node it reached that keeps an undo image.
#[derive(Debug)]
struct Transaction {
    stream_watermarks: BTreeMap<String, EventTime>,
    /// Per node: its input watermarks and output watermark.
    watermarks: Vec<(Vec<EventTime>, EventTime)>,
    /// Undo images taken, by node index.
    undo: Vec<(usize, Option<OperatorState>)>,
    imaged: Vec<bool>,
}

/// A running `INSERT INTO stream SELECT ...`.
#[derive(Debug, Clone)]
struct Insert {
    id: QueryId,
    nodes: std::ops::RangeInclusive<usize>,
    stream: String,
    /// The job's event-time unit (its watermarks') and the stream's.
    units: (TimeUnit, TimeUnit),
}

impl Insert {
    /// A watermark of the job as a watermark of the stream.
    fn converted(&self, watermark: EventTime) -> EventTime {
        convert_watermark(watermark, self.units.0, self.units.1)
    }
}

/// Who feeds a stream's readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feeder {
    /// The application's pushes.
    Pushes,
    /// The output node of an `INSERT INTO` the stream.
    Insert(usize),
}

/// What a new node reads from outside its own plan.
enum Upstream {
    Stream(String),
    View(String),
}

impl Graph {
    /// Adds a query's nodes, reading the named streams and views.
    pub fn add_query(&mut self, query: QueryId, plan: QueryPlan) -> Result<()> {
        let nodes = self.add_nodes(&format!("q{query}"), plan)?;
        self.queries.push((query, nodes));
        Ok(())
    }

    /// Adds a view's nodes: shared, evaluated once for every query and view
    /// that reads `name`. Its nodes' ids start with `v_<name>`.
    pub fn add_view(&mut self, name: &str, plan: QueryPlan) -> Result<()> {
        if self.views.contains_key(name) {
            return Err(err!(Internal, "view {name} added twice"));
        }
        let nodes = self.add_nodes(&format!("v_{name}"), plan)?;
        self.views.insert(name.to_string(), nodes);
        Ok(())
    }

    /// Adds an `INSERT INTO stream` job: its output node's rows become rows
    /// of `stream` for every node that reads it, and the stream's watermark
    /// is the minimum over its feeders (the job's output watermark; the
    /// stream's pushes once any arrived). A job that would close a cycle
    /// is refused, and the graph left as it was.
    /// `units`: the job's event-time unit and the stream's.
    pub fn add_insert(
        &mut self,
        id: QueryId,
        stream: &str,
        plan: QueryPlan,
        units: (TimeUnit, TimeUnit),
    ) -> Result<()> {
        let nodes = self.add_nodes(&format!("q{id}"), plan)?;
        self.inserts.push(Insert {
            id,
            nodes,
            stream: stream.to_string(),
            units,
        });
        if let Err(error) = self.reorder() {
            // A cycle after all: take the job back out.
            let nodes = self.nodes_of(id)?;
            self.inserts.retain(|insert| insert.id != id);
            self.remove_nodes(nodes)?;
            return Err(error);
        }
        Ok(())
    }

    /// The watermark the readers of `stream` see: the minimum over its
    /// feeders.
    pub fn stream_watermark(&self, stream: &str) -> EventTime {
        // Some: the pushes count when nothing else feeds the stream.
        self.feeder_watermark(stream, None).unwrap_or(NO_WATERMARK)
    }

    /// The minimum watermark over `stream`'s feeders other than `except`
    /// (`None` when there is no other). Pushes count once they have moved
    /// the watermark: a stream fed only by `INSERT INTO` is not held back
    /// by pushes that never come.
    fn feeder_watermark(&self, stream: &str, except: Option<Feeder>) -> Option<EventTime> {
        let mut feeders: Vec<(Feeder, EventTime)> = self
            .inserts
            .iter()
            .filter(|insert| insert.stream == stream)
            .map(|insert| {
                let node = *insert.nodes.end();
                let watermark = insert.converted(self.nodes[node].output_watermark);
                (Feeder::Insert(node), watermark)
            })
            .collect();
        let pushed = self.stream_watermarks.get(stream).copied();
        match pushed {
            Some(watermark) if watermark != NO_WATERMARK || feeders.is_empty() => {
                feeders.push((Feeder::Pushes, watermark))
            }
            None if feeders.is_empty() => feeders.push((Feeder::Pushes, NO_WATERMARK)),
            _ => {}
        }
        feeders
            .into_iter()
            .filter(|(feeder, _)| Some(*feeder) != except)
            .map(|(_, watermark)| watermark)
            .min()
    }

    /// The job behind a feeder, if it is one.
    fn job_feeding(&self, feeder: Feeder) -> Option<&Insert> {
        match feeder {
            Feeder::Pushes => None,
            Feeder::Insert(node) => self.job_ending_at(node),
        }
    }

    /// The `INSERT INTO` job whose output node is `node`, if any.
    fn job_ending_at(&self, node: usize) -> Option<&Insert> {
        self.inserts
            .iter()
            .find(|insert| *insert.nodes.end() == node)
    }

    /// Hands a feeder's message to the readers of `stream`: rows capped by
    /// the other feeders' watermarks, watermarks as the minimum over all.
    fn feed(
        &self,
        inboxes: &mut [Vec<(usize, Message)>],
        stream: &str,
        feeder: Feeder,
        message: Message,
    ) {
        let Some(edges) = self.streams.get(stream) else {
            return;
        };
        let message = match message {
            Message::Rows(mut rows) => {
                if let Some(insert) = self.job_feeding(feeder) {
                    if insert.units.0 != insert.units.1 {
                        rows.row_watermarks = rows.row_watermarks.mapped(|w| insert.converted(w));
                        rows.watermark_after = insert.converted(rows.watermark_after);
                    }
                }
                if let Some(limit) = self.feeder_watermark(stream, Some(feeder)) {
                    rows.row_watermarks = rows.row_watermarks.capped(limit);
                    rows.watermark_after = rows.watermark_after.min(limit);
                }
                Message::Rows(rows)
            }
            Message::Watermark(watermark) => Message::Watermark(match self.job_feeding(feeder) {
                // The value this message carries (a node may emit several
                // in one call), under the other feeders'.
                Some(insert) => {
                    let own = insert.converted(watermark);
                    self.feeder_watermark(stream, Some(feeder))
                        .map_or(own, |others| others.min(own))
                }
                // The pushes' watermark was recorded before this call.
                None => self.stream_watermark(stream),
            }),
            // Late rows of a job have no application to go to.
            Message::Late(_) if feeder != Feeder::Pushes => return,
            late => late,
        };
        deliver(inboxes, edges, message);
    }

    /// Tests only: makes node `id` fail whenever a call reaches it (`None`:
    /// no node), as an expression that fails there would.
    #[doc(hidden)]
    pub fn inject_failure(&mut self, id: Option<&str>) -> Result<()> {
        self.injected_failure = id.map(str::to_string);
        self.reorder()
    }

    /// Every node's id, in push order.
    pub fn node_ids(&self) -> Vec<String> {
        self.order
            .iter()
            .map(|&i| self.nodes[i].id.clone())
            .collect()
    }

    /// Whether any query or view reads view `name`.
    pub fn view_is_read(&self, name: &str) -> bool {
        self.views
            .get(name)
            .is_some_and(|nodes| !self.nodes[*nodes.end()].edges.is_empty())
    }

    /// Removes view `name` and its state; it must have no readers.
    pub fn remove_view(&mut self, name: &str) -> Result<()> {
        if self.view_is_read(name) {
            return Err(err!(Internal, "view {name} removed while read"));
        }
        let nodes = self
            .views
            .remove(name)
            .ok_or_else(|| err!(Internal, "no view {name}"))?;
        self.remove_nodes(nodes)
    }

    /// Removes query `query`'s nodes and state.
    pub fn remove_query(&mut self, query: QueryId) -> Result<()> {
        let nodes = self.nodes_of(query)?;
        self.queries.retain(|(q, _)| *q != query);
        self.inserts.retain(|insert| insert.id != query);
        self.remove_nodes(nodes)
    }

    /// Removes a contiguous range of nodes that nothing outside it reads,
    /// renumbering the nodes after it.
    fn remove_nodes(&mut self, range: std::ops::RangeInclusive<usize>) -> Result<()> {
        let (first, last) = (*range.start(), *range.end());
        let removed = last + 1 - first;
        let renumber = |index: usize| if index > last { index - removed } else { index };
        self.nodes.drain(range);
        let keep = |edge: &Edge| edge.to < first || edge.to > last;
        for node in self.nodes.iter_mut() {
            node.edges.retain(keep);
            for edge in node.edges.iter_mut() {
                edge.to = renumber(edge.to);
            }
        }
        for edges in self.streams.values_mut() {
            edges.retain(keep);
            for edge in edges.iter_mut() {
                edge.to = renumber(edge.to);
            }
        }
        self.streams.retain(|_, edges| !edges.is_empty());
        let shift = |nodes: &mut std::ops::RangeInclusive<usize>| {
            *nodes = renumber(*nodes.start())..=renumber(*nodes.end());
        };
        self.queries.iter_mut().for_each(|(_, nodes)| shift(nodes));
        self.views.values_mut().for_each(shift);
        self.inserts
            .iter_mut()
            .for_each(|insert| shift(&mut insert.nodes));
        self.reorder()
    }

    fn add_nodes(
        &mut self,
        prefix: &str,
        plan: QueryPlan,
    ) -> Result<std::ops::RangeInclusive<usize>> {
        if plan.nodes.is_empty() {
            return Err(err!(Internal, "a query plan without nodes"));
        }
        let base = self.nodes.len();
        let mut added: Vec<Node> = Vec::new();
        let mut outside_edges: Vec<(Upstream, Edge)> = Vec::new();
        for (position, planned) in plan.nodes.into_iter().enumerate() {
            let index = base + position;
            let mut input_watermarks = Vec::new();
            for (port, input) in planned.inputs.iter().enumerate() {
                let edge = Edge { to: index, port };
                let watermark = match input {
                    InputRef::Stream(name) => match self.views.get(name) {
                        Some(view) => {
                            outside_edges.push((Upstream::View(name.clone()), edge));
                            self.nodes[*view.end()].output_watermark
                        }
                        None => {
                            outside_edges.push((Upstream::Stream(name.clone()), edge));
                            self.stream_watermark(name)
                        }
                    },
                    InputRef::Node(from) if *from < position => {
                        added[*from].edges.push(edge);
                        added[*from].output_watermark
                    }
                    InputRef::Node(from) => {
                        return Err(err!(
                            Internal,
                            "node {position} reads node {from}, which is not before it"
                        ))
                    }
                };
                input_watermarks.push(watermark);
            }
            if input_watermarks.is_empty() {
                return Err(err!(Internal, "node {position} has no input"));
            }
            let output_watermark = input_watermarks
                .iter()
                .copied()
                .min()
                .unwrap_or(NO_WATERMARK);
            added.push(Node {
                id: format!("{prefix}/{position}"),
                operator: planned.operator,
                input_watermarks,
                output_watermark,
                edges: Vec::new(),
            });
        }
        let output = base + added.len() - 1;
        self.nodes.extend(added);
        for (upstream, edge) in outside_edges {
            match upstream {
                Upstream::Stream(name) => self.streams.entry(name).or_default().push(edge),
                Upstream::View(name) => {
                    let view = *self.views[&name].end();
                    self.nodes[view].edges.push(edge);
                }
            }
        }
        self.reorder()?;
        Ok(base..=output)
    }

    /// Where node `index`'s messages go: its own edges, and for the output
    /// of an `INSERT INTO`, every reader of the target stream.
    fn successors(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let fed = self
            .job_ending_at(index)
            .and_then(|insert| self.streams.get(&insert.stream))
            .into_iter()
            .flatten();
        self.nodes[index]
            .edges
            .iter()
            .chain(fed)
            .map(|edge| edge.to)
    }

    /// Orders the nodes for a push: stateless nodes with no stateful node
    /// upstream first (every query's), then by the number of stateful nodes
    /// upstream. A node's depth is at least its inputs', and greater than a
    /// stateful input's, so ties broken by a topological rank keep inputs
    /// first. Fails on a cycle (through `INSERT INTO`).
    fn reorder(&mut self) -> Result<()> {
        let count = self.nodes.len();
        let successors: Vec<Vec<usize>> = (0..count)
            .map(|index| self.successors(index).collect())
            .collect();
        let mut pending = vec![0usize; count];
        for to in successors.iter().flatten() {
            pending[*to] += 1;
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..count).filter(|&i| pending[i] == 0).collect();
        let mut rank = vec![0usize; count];
        let mut depth = vec![0usize; count];
        let mut ranked = 0;
        while let Some(index) = ready.pop_first() {
            rank[index] = ranked;
            ranked += 1;
            let below =
                depth[index] + usize::from(self.nodes[index].operator.state_kind().is_some());
            for &to in &successors[index] {
                depth[to] = depth[to].max(below);
                pending[to] -= 1;
                if pending[to] == 0 {
                    ready.insert(to);
                }
            }
        }
        if ranked < count {
            return Err(err!(
                Unsupported,
                "INSERT INTO would feed a stream into itself (through the streams and views it reads)"
            ));
        }
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&i| {
            (
                depth[i],
                self.nodes[i].operator.state_kind().is_some(),
                rank[i],
            )
        });
        let mut keeps_undo = vec![false; count];
        let mut failure_follows = false;
        for &index in order.iter().rev() {
            let node = &self.nodes[index];
            let operator = &node.operator;
            failure_follows |=
                operator.may_fail() || self.injected_failure.as_deref() == Some(node.id.as_str());
            keeps_undo[index] = failure_follows && operator.state_kind().is_some();
        }
        self.order = order;
        self.keeps_undo = keeps_undo;
        Ok(())
    }

    /// Runs `call` (pushes, ticks) as one transaction: if it fails, the
    /// graph is left as it was before it. Nested calls join the open one.
    pub fn atomically<T>(&mut self, call: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.transaction.is_some() {
            return call(self);
        }
        self.transaction = Some(Transaction {
            stream_watermarks: self.stream_watermarks.clone(),
            watermarks: self
                .nodes
                .iter()
                .map(|n| (n.input_watermarks.clone(), n.output_watermark))
                .collect(),
            undo: Vec::new(),
            imaged: vec![false; self.nodes.len()],
        });
        let result = call(self);
        let Some(transaction) = self.transaction.take() else {
            return Err(err!(Internal, "the graph's transaction vanished"));
        };
        match result {
            Ok(value) => Ok(value),
            Err(error) => match self.undo(transaction) {
                Ok(()) => Err(error),
                Err(undo) => Err(err!(
                    Internal,
                    "undoing a failed call failed ({}), after: {}",
                    undo.message(),
                    error.message()
                )),
            },
        }
    }

    fn undo(&mut self, transaction: Transaction) -> Result<()> {
        self.stream_watermarks = transaction.stream_watermarks;
        for (node, (inputs, output)) in self.nodes.iter_mut().zip(transaction.watermarks) {
            node.input_watermarks = inputs;
            node.output_watermark = output;
        }
        for (index, state) in transaction.undo {
            let node = &mut self.nodes[index];
            node.operator = node.operator.restored(state.as_ref())?;
        }
        Ok(())
    }

    /// Before a call first changes node `index`: its undo image, if it
    /// keeps one.
    fn image(&mut self, index: usize) -> Result<()> {
        if !self.keeps_undo[index] {
            return Ok(());
        }
        let Some(transaction) = self.transaction.as_mut() else {
            return Ok(());
        };
        if transaction.imaged[index] {
            return Ok(());
        }
        transaction.imaged[index] = true;
        let state = self.nodes[index].operator.snapshot()?;
        transaction.undo.push((index, state));
        Ok(())
    }

    /// Runs pushed rows (then the stream's watermark) through every node
    /// that reads `stream`; returns what the queries emitted.
    /// A failed push changes nothing.
    pub fn push(
        &mut self,
        stream: &str,
        messages: Vec<Message>,
    ) -> Result<Vec<(QueryId, Emitted)>> {
        self.atomically(|graph| {
            let mut inboxes = graph.inboxes();
            for message in messages {
                if let Message::Watermark(watermark) = message {
                    graph
                        .stream_watermarks
                        .insert(stream.to_string(), watermark);
                }
                graph.feed(&mut inboxes, stream, Feeder::Pushes, message);
            }
            graph.run(inboxes, None)
        })
    }

    /// Wall-clock tick for every node that wants one; a failed tick changes
    /// nothing.
    pub fn tick(&mut self, now_millis: i64) -> Result<Vec<(QueryId, Emitted)>> {
        self.atomically(|graph| {
            let inboxes = graph.inboxes();
            graph.run(inboxes, Some(now_millis))
        })
    }

    /// Whether any node wants wall-clock ticks.
    pub fn needs_clock(&self) -> bool {
        self.nodes.iter().any(|n| n.operator.needs_clock())
    }

    fn inboxes(&self) -> Vec<Vec<(usize, Message)>> {
        (0..self.nodes.len()).map(|_| Vec::new()).collect()
    }

    fn run(
        &mut self,
        mut inboxes: Vec<Vec<(usize, Message)>>,
        now_millis: Option<i64>,
    ) -> Result<Vec<(QueryId, Emitted)>> {
        let mut results = Vec::new();
        for position in 0..self.order.len() {
            let index = self.order[position];
            let inbox = std::mem::take(&mut inboxes[index]);
            let ticked = now_millis.filter(|_| self.nodes[index].operator.needs_clock());
            if inbox.is_empty() && ticked.is_none() {
                continue;
            }
            if self.injected_failure.as_deref() == Some(self.nodes[index].id.as_str()) {
                return Err(err!(
                    Execution,
                    "injected failure at operator {}",
                    self.nodes[index].id
                ));
            }
            self.image(index)?;
            let node = &mut self.nodes[index];
            let mut out = Output::new(node.output_watermark);
            for (port, message) in inbox {
                match message {
                    Message::Rows(mut rows) => {
                        // Never judged against less than this input already
                        // passed (a stream fed by several jobs and pushes
                        // can hand over rows from a slower feeder).
                        let floor = node.input_watermarks[port];
                        rows.row_watermarks = rows.row_watermarks.floored(floor);
                        rows.watermark_after = rows.watermark_after.max(floor);
                        if node.input_watermarks.len() > 1 {
                            let others = node
                                .input_watermarks
                                .iter()
                                .enumerate()
                                .filter(|(p, _)| *p != port)
                                .map(|(_, w)| *w)
                                .min()
                                .unwrap_or(NO_WATERMARK);
                            rows.row_watermarks = rows.row_watermarks.capped(others);
                            rows.watermark_after = rows.watermark_after.min(others);
                        }
                        node.operator.process(port, rows, &mut out)?;
                    }
                    Message::Late(batch) => out.late(batch),
                    Message::Watermark(watermark) => {
                        let slot = &mut node.input_watermarks[port];
                        *slot = (*slot).max(watermark);
                        let combined = node
                            .input_watermarks
                            .iter()
                            .copied()
                            .min()
                            .unwrap_or(NO_WATERMARK);
                        let forwarded = node
                            .operator
                            .on_watermark(combined, &mut out)?
                            .min(combined)
                            .max(node.output_watermark);
                        node.output_watermark = forwarded;
                        out.watermark = forwarded;
                        out.messages.push(Message::Watermark(forwarded));
                    }
                }
            }
            if let Some(now) = ticked {
                node.operator.on_wall_clock(now, &mut out)?;
            }
            let target = self
                .job_ending_at(index)
                .map(|insert| insert.stream.clone());
            for message in out.messages {
                for (query, nodes) in &self.queries {
                    if *nodes.end() == index {
                        let query = *query;
                        match &message {
                            Message::Rows(rows) => {
                                results.push((query, Emitted::Rows(rows.batch.clone())))
                            }
                            Message::Late(batch) => {
                                results.push((query, Emitted::Late(batch.clone())))
                            }
                            Message::Watermark(_) => {}
                        }
                    }
                }
                match &target {
                    Some(stream) => self.feed(&mut inboxes, stream, Feeder::Insert(index), message),
                    None => deliver(&mut inboxes, &self.nodes[index].edges, message),
                }
            }
        }
        Ok(results)
    }

    /// The node indices of `query` (or `INSERT INTO` job); the last is its
    /// output.
    fn nodes_of(&self, query: QueryId) -> Result<std::ops::RangeInclusive<usize>> {
        self.queries
            .iter()
            .find(|(q, _)| *q == query)
            .map(|(_, nodes)| nodes.clone())
            .or_else(|| {
                self.inserts
                    .iter()
                    .find(|insert| insert.id == query)
                    .map(|insert| insert.nodes.clone())
            })
            .ok_or_else(|| err!(UnknownQuery, "no query with id {query}"))
    }

    /// The result schema of `query`.
    pub fn output_schema(&self, query: QueryId) -> Result<SchemaRef> {
        Ok(self.nodes[*self.nodes_of(query)?.end()]
            .operator
            .output_schema())
    }

    /// Counters of `query`, summed over its nodes.
    pub fn metrics(&self, query: QueryId) -> Result<OperatorMetrics> {
        let mut total = OperatorMetrics::default();
        for index in self.nodes_of(query)? {
            total.add(&self.nodes[index].operator.metrics());
        }
        Ok(total)
    }

    /// Every node's watermarks and state, leaving the graph as it was.
    pub fn snapshot(&mut self) -> Result<Vec<NodeSnapshot>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in self.nodes.iter_mut() {
            let state = match node.operator.state_kind() {
                Some(kind) => {
                    let state = node.operator.snapshot()?.ok_or_else(|| {
                        err!(Internal, "stateful node {} gave no snapshot", node.id)
                    })?;
                    Some((kind, state))
                }
                None => None,
            };
            out.push(NodeSnapshot {
                id: node.id.clone(),
                input_watermarks: node.input_watermarks.clone(),
                output_watermark: node.output_watermark,
                state,
            });
        }
        Ok(out)
    }

    /// Replaces every node's watermarks and state with a checkpoint's, and
    /// the streams' last watermarks with `stream_watermarks`. Every restored
    /// node is built and checked before any is swapped in, so a failure
    /// leaves the graph as it was.
    pub fn restore(
        &mut self,
        entries: &[NodeRestore],
        stream_watermarks: &BTreeMap<String, EventTime>,
    ) -> Result<()> {
        let mut by_id: BTreeMap<&str, &NodeRestore> = BTreeMap::new();
        for entry in entries {
            if by_id.insert(entry.id.as_str(), entry).is_some() {
                return Err(err!(
                    CorruptCheckpoint,
                    "the checkpoint names operator {} twice",
                    entry.id
                ));
            }
        }
        let mut built = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let entry = by_id.remove(node.id.as_str()).ok_or_else(|| {
                err!(
                    CheckpointMismatch,
                    "the checkpoint has no entry for operator {}",
                    node.id
                )
            })?;
            let expected = node.operator.state_kind();
            let found = entry.state.as_ref().map(|(kind, _)| kind.as_str());
            if expected != found {
                return Err(err!(
                    CheckpointMismatch,
                    "the checkpoint holds {} for operator {} where this engine has {}",
                    found.map_or("no state".to_string(), |k| format!("'{k}' state")),
                    node.id,
                    expected.map_or("no state".to_string(), |k| format!("'{k}' state"))
                ));
            }
            if entry.input_watermarks.len() != node.input_watermarks.len() {
                return Err(err!(
                    CorruptCheckpoint,
                    "operator {} has {} input watermarks in the checkpoint, not {}",
                    node.id,
                    entry.input_watermarks.len(),
                    node.input_watermarks.len()
                ));
            }
            let operator = node
                .operator
                .restored(entry.state.as_ref().map(|(_, state)| state))?;
            built.push((
                operator,
                entry.input_watermarks.clone(),
                entry.output_watermark,
            ));
        }
        if let Some(extra) = by_id.keys().next() {
            return Err(err!(
                CheckpointMismatch,
                "the checkpoint has operator {extra}, which this engine lacks"
            ));
        }
        // Everything checked: swap in.
        for (node, (operator, inputs, output)) in self.nodes.iter_mut().zip(built) {
            node.operator = operator;
            node.input_watermarks = inputs;
            node.output_watermark = output;
        }
        self.stream_watermarks = stream_watermarks.clone();
        Ok(())
    }
}

fn deliver(inboxes: &mut [Vec<(usize, Message)>], edges: &[Edge], message: Message) {
    if let Some((last, rest)) = edges.split_last() {
        for edge in rest {
            inboxes[edge.to].push((edge.port, message.clone()));
        }
        inboxes[last.to].push((last.port, message));
    }
}
