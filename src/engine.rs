//! The engine: streams, queries, and pushes through them.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, RwLock};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    CreateView, DdlStatement, DmlStatement, DropView, LogicalPlan, WriteOp,
};
use datafusion::prelude::SessionContext;

use crate::catalog::{BadRowPolicy, StreamCatalog, StreamDef};
use crate::codec::columns::{decode_columns, ColumnarRows};
use crate::codec::json::{array_to_ndjson, decode_ndjson, encode_rows};
use crate::codec::time_values::decoding_schema;
use crate::err;
use crate::error::Result;
use crate::metrics::QueryMetrics;
use crate::ops::changelog::without_op_column;
pub use crate::ops::graph::QueryId;
use crate::ops::graph::{Emitted, Graph, InputRef, Message, NodeRestore, RowWatermarks, Rows};
use crate::ops::insert::InsertNode;
use crate::ops::source::{conform_to, millis_to_ticks, split_bad_rows, BadRow, StreamSource};
use crate::plan::{lower, QueryOptions, StreamingPlan};
use crate::sql::ddl::{is_create_stream, parse_create_stream, CreateStream};
use crate::sql::emit::{split_emit_clause, EmitClause, EmitMode};
use crate::sql::flink_syntax::{rewrite_temporal_tables, rewrite_window_tvfs};
use crate::sql::hints::{resolve_inputs, state_ttl_hints};
use crate::sql::interval_literal;
use crate::sql::lookup_table::LookupTableProvider;
use crate::sql::session::{new_session, plan_sql};
use crate::sql::stream_table::StreamTableProvider;
use crate::sql::window_tvf::{WindowFunction, WindowKind};
use crate::sql::{declares_table, plan_create_stream, plan_create_table};
use crate::state::checkpoint::{
    fingerprint, BlobRef, Checkpoint, Manifest, OperatorManifest, StreamManifest, TableManifest,
    FORMAT_VERSION,
};
use crate::state::{read_ipc, write_ipc, OperatorState};
use crate::table::{LookupTable, TableChange, Tables};
use crate::time::interval::interval_to_units;
use crate::time::watermark::{END_OF_INPUT, NO_WATERMARK};
use crate::time::{nanos_per_unit, EventTime};

/// Rows a query emitted.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The query.
    pub query: QueryId,
    /// Its rows: results in the query's result schema, or late input rows
    /// in the stream's schema when `late` is set.
    pub batch: RecordBatch,
    /// Whether these are late input rows (side output), not results.
    pub late: bool,
}

impl QueryOutput {
    fn new((query, emitted): (QueryId, Emitted)) -> Self {
        match emitted {
            Emitted::Rows(batch) => Self {
                query,
                batch,
                late: false,
            },
            Emitted::Late(batch) => Self {
                query,
                batch,
                late: true,
            },
        }
    }
}

/// What the engine keeps of a query beside its nodes in the graph.
struct RunningQuery {
    id: QueryId,
    /// The streams and views it reads.
    inputs: Vec<String>,
}

/// A streaming SQL engine: one DataFusion session, its streams and queries.
pub struct Engine {
    ctx: SessionContext,
    catalog: Arc<RwLock<StreamCatalog>>,
    sources: BTreeMap<String, StreamSource>,
    /// Views by name, each with the declared streams behind it.
    views: BTreeMap<String, Vec<String>>,
    /// `INSERT INTO` jobs: the stream each feeds and the streams and views
    /// its query reads.
    inserts: BTreeMap<QueryId, (String, Vec<String>)>,
    graph: Graph,
    queries: Vec<RunningQuery>,
    next_query: QueryId,
    /// Last wall-clock time told by [`Engine::tick`] (epoch ms).
    wall_clock_millis: Option<i64>,
    /// DDL and queries in order: what a checkpoint must have been taken of.
    fingerprint_parts: Vec<String>,
    /// Rows dropped by dead-letter streams, until taken.
    dead_letters: Vec<(String, BadRow)>,
    /// Tables (`CREATE TABLE ... PRIMARY KEY` without a watermark), which
    /// the application fills and lookup joins read.
    tables: Tables,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("streams", &self.sources.keys().collect::<Vec<_>>())
            .field("queries", &self.queries.len())
            .finish()
    }
}

impl Engine {
    /// An engine with no streams.
    pub fn new() -> Result<Self> {
        let ctx = new_session();
        let catalog = Arc::new(RwLock::new(StreamCatalog::default()));
        // Table function names are looked up as written, not normalised.
        for kind in WindowKind::ALL {
            let upper = kind.name();
            let lower = upper.to_lowercase();
            let title = format!("{}{}", &upper[..1], &lower[1..]);
            for name in [upper.to_string(), lower, title] {
                ctx.register_udtf(
                    &name,
                    Arc::new(WindowFunction::new(kind, Arc::clone(&catalog))),
                );
            }
        }
        ctx.register_udtf(
            crate::sql::versioned::VERSIONED,
            Arc::new(crate::sql::versioned::VersionedFunction::new(Arc::clone(
                &catalog,
            ))),
        );
        Ok(Self {
            ctx,
            catalog,
            sources: BTreeMap::new(),
            views: BTreeMap::new(),
            inserts: BTreeMap::new(),
            graph: Graph::default(),
            queries: Vec::new(),
            next_query: 0,
            wall_clock_millis: None,
            fingerprint_parts: Vec::new(),
            dead_letters: Vec::new(),
            tables: Tables::new(),
        })
    }

    /// The DataFusion session, to register UDFs and UDAFs that queries can use.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs a statement of `sql()` in JavaScript: `CREATE STREAM`,
    /// `CREATE [TEMPORARY] VIEW`, `DROP VIEW`, or `INSERT INTO stream
    /// SELECT ...`, which starts a job and returns its id (close it with
    /// [`Engine::close_query`]).
    pub fn execute(&mut self, sql: &str) -> Result<Option<QueryId>> {
        if is_create_stream(sql) {
            let ast = parse_create_stream(sql)?;
            if declares_table(&ast) {
                return self.create_table(ast, sql).map(|()| None);
            }
            return self.create_stream(ast, sql).map(|()| None);
        }
        let not_ddl = || {
            err!(
                Unsupported,
                "sql() runs CREATE STREAM, CREATE VIEW, DROP VIEW and INSERT INTO; register a SELECT with query() instead"
            )
        };
        if !starts_with_keyword(sql, &["create", "drop", "insert"]) {
            return Err(not_ddl());
        }
        match self.plan_statement(sql)? {
            LogicalPlan::Ddl(DdlStatement::CreateView(view)) => {
                self.create_view(&view, sql).map(|()| None)
            }
            LogicalPlan::Ddl(DdlStatement::DropView(drop)) => {
                self.drop_view(&drop, sql).map(|()| None)
            }
            LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(InsertOp::Append)) => {
                self.insert_into(&dml, sql).map(Some)
            }
            LogicalPlan::Dml(_) => Err(err!(
                Unsupported,
                "streams take new events only: INSERT INTO stream SELECT ... (not OVERWRITE, REPLACE, UPDATE or DELETE)"
            )),
            _ => Err(not_ddl()),
        }
    }

    /// `INSERT INTO stream SELECT ...`: a job whose results become events
    /// of a declared stream, with the job's watermark.
    fn insert_into(&mut self, dml: &DmlStatement, sql: &str) -> Result<QueryId> {
        let (lowered, def) = self.plan_insert(dml, sql)?;
        let id = self.next_query;
        let target = def.name.clone();
        let units = (lowered.time_unit, def.event_time_unit);
        self.graph.add_insert(id, &target, lowered.plan, units)?;
        self.next_query += 1;
        self.fingerprint_parts
            .push(format!("insert {}", sql.trim()));
        self.inserts.insert(id, (target, lowered.streams));
        Ok(id)
    }

    /// Plans an INSERT's query, its last node handing rows to the stream;
    /// with the stream it feeds.
    fn plan_insert(
        &self,
        dml: &DmlStatement,
        sql: &str,
    ) -> Result<(StreamingPlan, Arc<StreamDef>)> {
        let target = dml.table_name.table().to_string();
        if self.tables.contains_key(&target) {
            return Err(err!(
                Unsupported,
                "'{target}' is a table: the application changes its rows with upsert() and delete(); INSERT INTO a stream"
            ));
        }
        let def = self.catalog_read()?.get(&target)?;
        if def.is_view {
            return Err(err!(
                Unsupported,
                "'{target}' is a view: its rows come from its query; INSERT INTO a stream declared with CREATE STREAM"
            ));
        }
        let state = self.ctx.state();
        let input_ttls = resolve_inputs(&dml.input, state_ttl_hints(sql)?)?;
        let physical = futures::executor::block_on(state.create_physical_plan(&dml.input))?;
        let mut lowered = lower(
            &physical,
            &QueryOptions::default(),
            None,
            &self.tables,
            &input_ttls,
        )?;
        if lowered.is_changelog {
            return Err(err!(
                Unsupported,
                "INSERT INTO {target} would insert a changelog (the results of GROUP BY without a window, of EMIT ON UPDATE, or of an outer join under a state TTL), whose rows are updated and retracted: a stream takes final rows, as Flink's append-only tables do; aggregate over a window, or read the changelog with query()"
            ));
        }
        if self.streams_behind(&lowered.streams).contains(&target) {
            return Err(err!(
                Unsupported,
                "INSERT INTO {target} reads {target} itself (directly, through views or through other INSERTs): a stream cannot feed itself"
            ));
        }
        let last = lowered.plan.nodes.len() - 1;
        lowered.plan.add(
            Box::new(InsertNode::new(Arc::clone(&def))),
            vec![InputRef::Node(last)],
        );
        Ok((lowered, def))
    }

    fn create_stream(&mut self, ast: CreateStream, sql: &str) -> Result<()> {
        let def = plan_create_stream(&self.ctx.state(), ast)?;
        let def = self
            .catalog
            .write()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .insert(def)?;
        self.ctx.register_table(
            def.name.as_str(),
            Arc::new(StreamTableProvider::new(Arc::clone(&def))),
        )?;
        self.sources
            .insert(def.name.clone(), StreamSource::new(def));
        self.fingerprint_parts
            .push(format!("stream {}", sql.trim()));
        Ok(())
    }

    /// `CREATE TABLE t (..., PRIMARY KEY (k))` without a watermark: a
    /// table the application fills, which lookup joins read.
    fn create_table(&mut self, ast: CreateStream, sql: &str) -> Result<()> {
        let def = plan_create_table(&self.ctx.state(), ast)?;
        // Built before the catalog takes the name: nothing to undo after.
        let table = LookupTable::new(Arc::new(def.clone()))?;
        let def = self
            .catalog
            .write()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .insert_table(def)?;
        self.ctx.register_table(
            def.name.as_str(),
            Arc::new(LookupTableProvider::new(Arc::clone(&def))),
        )?;
        self.tables
            .insert(def.name.clone(), Rc::new(std::cell::RefCell::new(table)));
        self.fingerprint_parts.push(format!("table {}", sql.trim()));
        Ok(())
    }

    fn table(&self, name: &str) -> Result<&crate::table::SharedTable> {
        self.tables.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.tables.keys().map(String::as_str).collect();
            let hint = if self.sources.contains_key(name) || self.views.contains_key(name) {
                format!("'{name}' is a stream or view: push events to it; a table is declared with CREATE TABLE {name} (..., PRIMARY KEY (<column>))")
            } else {
                format!(
                    "declare it with CREATE TABLE {name} (..., PRIMARY KEY (<column>)) first (tables: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )
            };
            err!(UnknownStream, "unknown table '{name}': {hint}")
        })
    }

    /// Inserts or replaces rows of a table by primary key (of several rows
    /// with one key, the last wins). Columns are matched by name and cast
    /// to the declared types; the key's columns are required. Events
    /// processed from now on meet the new rows; results already emitted
    /// stay as they were. A refused call changes nothing.
    pub fn upsert(&mut self, table: &str, batch: &RecordBatch) -> Result<TableChange> {
        let shared = self.table(table)?;
        let mut held = shared.borrow_mut();
        let def = Arc::clone(held.def());
        let keys = def.key_names();
        let rows = conform_to(&format!("table '{table}'"), &def.schema, batch, &|name| {
            keys.contains(&name)
        })?;
        held.upsert(&rows)
    }

    /// [`Engine::upsert`] of JSON objects: newline-delimited, or one array.
    pub fn upsert_json(&mut self, table: &str, text: &str) -> Result<TableChange> {
        let schema = Arc::clone(&self.table(table)?.borrow().def().schema);
        let batch = decode_json_rows(&schema, text)
            .map_err(|e| err!(InvalidInput, "table '{table}': {}", e.message()))?;
        self.upsert(table, &batch)
    }

    /// [`Engine::upsert`] of Arrow IPC stream bytes.
    pub fn upsert_arrow_ipc(&mut self, table: &str, bytes: &[u8]) -> Result<TableChange> {
        self.table(table)?;
        let batch = read_ipc(bytes).map_err(|e| {
            err!(
                InvalidInput,
                "table '{table}': not Arrow IPC stream data: {}",
                e.message()
            )
        })?;
        self.upsert(table, &batch)
    }

    /// Removes rows of a table by key: `keys` holds the key's columns (by
    /// name; others are ignored). Absent keys are ignored. A refused call
    /// changes nothing.
    pub fn delete(&mut self, table: &str, keys: &RecordBatch) -> Result<TableChange> {
        let shared = self.table(table)?;
        let mut held = shared.borrow_mut();
        let key_schema = key_schema(held.def())?;
        let rows = conform_to(&format!("table '{table}'"), &key_schema, keys, &|_| true)?;
        held.delete(rows.columns())
    }

    /// [`Engine::delete`] of JSON objects holding the key's fields.
    pub fn delete_json(&mut self, table: &str, text: &str) -> Result<TableChange> {
        let key_schema = key_schema(self.table(table)?.borrow().def())?;
        let batch = decode_json_rows(&key_schema, text)
            .map_err(|e| err!(InvalidInput, "table '{table}': {}", e.message()))?;
        self.delete(table, &batch)
    }

    /// Rows a table holds.
    pub fn table_len(&self, table: &str) -> Result<usize> {
        Ok(self.table(table)?.borrow().len())
    }

    /// The declared schema of a table.
    pub fn table_schema(&self, table: &str) -> Result<SchemaRef> {
        Ok(Arc::clone(&self.table(table)?.borrow().def().schema))
    }

    /// `CREATE VIEW`: the view's query becomes shared nodes of the graph,
    /// evaluated once however many queries and views read it.
    fn create_view(&mut self, view: &CreateView, sql: &str) -> Result<()> {
        let name = view.name.table().to_string();
        let exists = self.catalog_read()?.get(&name).ok();
        if let Some(existing) = &exists {
            if !(view.or_replace && existing.is_view) {
                return Err(err!(
                    StreamExists,
                    "{} named '{name}' already exists{}",
                    existing.kind_name(),
                    if existing.is_view {
                        "; drop it first, or CREATE OR REPLACE VIEW"
                    } else {
                        ""
                    }
                ));
            }
        }
        let state = self.ctx.state();
        let input_ttls = resolve_inputs(&view.input, state_ttl_hints(sql)?)?;
        let physical = futures::executor::block_on(state.create_physical_plan(&view.input))?;
        let lowered = lower(
            &physical,
            &QueryOptions::default(),
            None,
            &self.tables,
            &input_ttls,
        )?;
        if exists.is_some() {
            // OR REPLACE: the old view goes first, if nothing reads it.
            self.drop_view_named(&name)?;
        }
        let mut schema = lowered.plan.output()?.output_schema();
        if lowered.is_changelog {
            // SQL over the view sees the result's columns; `_op` travels
            // with its rows, after them.
            schema = without_op_column(&schema)?;
        }
        let streams = self.source_streams(&lowered.streams);
        let def = StreamDef::view(
            name.clone(),
            schema,
            lowered.time_unit,
            lowered.time_column,
            lowered.is_changelog,
        );
        let def = self
            .catalog
            .write()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .insert(def)?;
        self.graph.add_view(&name, lowered.plan)?;
        self.ctx
            .register_table(name.as_str(), Arc::new(StreamTableProvider::new(def)))?;
        self.views.insert(name, streams);
        self.fingerprint_parts.push(format!("view {}", sql.trim()));
        Ok(())
    }

    /// `DROP VIEW [IF EXISTS]`: removes the view's nodes and state.
    fn drop_view(&mut self, drop: &DropView, sql: &str) -> Result<()> {
        let name = drop.name.table().to_string();
        if !self.views.contains_key(&name) {
            if drop.if_exists {
                return Ok(());
            }
            let is_stream = self.sources.contains_key(&name);
            return Err(err!(
                UnknownStream,
                "{}",
                if is_stream {
                    format!("'{name}' is a stream, not a view; streams cannot be dropped yet")
                } else {
                    format!("there is no view '{name}'")
                }
            ));
        }
        self.drop_view_named(&name)?;
        self.fingerprint_parts.push(format!("drop {}", sql.trim()));
        Ok(())
    }

    fn drop_view_named(&mut self, name: &str) -> Result<()> {
        if self.graph.view_is_read(name) {
            return Err(err!(
                Unsupported,
                "view '{name}' is read by a query or another view; close those first"
            ));
        }
        self.graph.remove_view(name)?;
        self.ctx.deregister_table(name)?;
        self.catalog
            .write()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .remove(name);
        self.views.remove(name);
        Ok(())
    }

    /// The declared streams directly behind `inputs` (streams and views).
    fn source_streams(&self, inputs: &[String]) -> Vec<String> {
        let mut streams: Vec<String> = Vec::new();
        for input in inputs {
            let behind = match self.views.get(input) {
                Some(streams) => streams.clone(),
                None => vec![input.clone()],
            };
            for stream in behind {
                if !streams.contains(&stream) {
                    streams.push(stream);
                }
            }
        }
        streams
    }

    /// Every declared stream whose events reach `inputs`: through views,
    /// and through the `INSERT INTO` jobs that feed a stream.
    fn streams_behind(&self, inputs: &[String]) -> Vec<String> {
        let mut streams = self.source_streams(inputs);
        let mut next = 0;
        while next < streams.len() {
            let stream = streams[next].clone();
            for (target, read) in self.inserts.values() {
                if *target == stream {
                    for behind in self.source_streams(read) {
                        if !streams.contains(&behind) {
                            streams.push(behind);
                        }
                    }
                }
            }
            next += 1;
        }
        streams
    }

    /// Plans one statement; a table DataFusion does not know is an unknown
    /// stream, reported with the streams there are.
    fn plan_statement(&self, sql: &str) -> Result<LogicalPlan> {
        let sql = rewrite_window_tvfs(sql)?;
        let sql = rewrite_temporal_tables(&sql)?;
        plan_sql(&self.ctx.state(), &sql).map_err(|error| {
            if let DataFusionError::Plan(message) = error.find_root() {
                let table = message
                    .strip_prefix("table '")
                    .and_then(|rest| rest.strip_suffix("' not found"));
                if let Some(table) = table {
                    let name = table.rsplit('.').next().unwrap_or(table);
                    if let Err(unknown) = self.catalog_read().and_then(|c| c.get(name)) {
                        return unknown;
                    }
                }
            }
            error.into()
        })
    }

    fn catalog_read(&self) -> Result<std::sync::RwLockReadGuard<'_, StreamCatalog>> {
        self.catalog
            .read()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))
    }

    /// Registers a continuous query; its results come out of pushes.
    pub fn create_query(&mut self, sql: &str) -> Result<QueryId> {
        self.create_query_with(sql, &QueryOptions::default())
    }

    /// Registers a continuous query with options SQL does not express.
    pub fn create_query_with(&mut self, sql: &str, options: &QueryOptions) -> Result<QueryId> {
        let lowered = self.plan_query(sql, options)?;
        let id = self.next_query;
        let inputs = lowered.streams.clone();
        self.graph.add_query(id, lowered.plan)?;
        self.next_query += 1;
        self.fingerprint_parts
            .push(format!("query {} {options:?}", sql.trim()));
        self.queries.push(RunningQuery { id, inputs });
        Ok(id)
    }

    fn plan_query(&self, sql: &str, options: &QueryOptions) -> Result<StreamingPlan> {
        if is_create_stream(sql) {
            return Err(err!(
                Unsupported,
                "query() takes a SELECT; run CREATE STREAM and CREATE VIEW with sql()"
            ));
        }
        if strip_explain(sql).len() != sql.len() {
            return Err(err!(
                Unsupported,
                "EXPLAIN is answered by explain(), not query()"
            ));
        }
        let (sql, clause) = split_emit_clause(sql)?;
        let state = self.ctx.state();
        let emit = match clause {
            None => None,
            Some(EmitClause::Mode(mode)) => Some(mode),
            Some(EmitClause::Every(expr)) => {
                let interval = interval_literal(&state, &expr, "the EMIT EVERY period")?;
                let millis = interval_to_units(
                    interval,
                    arrow::datatypes::TimeUnit::Millisecond,
                    "the EMIT EVERY period",
                )?;
                if millis <= 0 {
                    return Err(err!(SqlPlan, "the EMIT EVERY period must be positive"));
                }
                Some(EmitMode::Every { millis })
            }
        };
        let logical = self.plan_statement(sql)?;
        if matches!(
            logical,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Copy(_)
        ) {
            return Err(err!(
                Unsupported,
                "query() takes a SELECT over a stream; run INSERT INTO and DDL with sql()"
            ));
        }
        let input_ttls = resolve_inputs(&logical, state_ttl_hints(sql)?)?;
        let physical = futures::executor::block_on(state.create_physical_plan(&logical))?;
        let lowered = lower(&physical, options, emit, &self.tables, &input_ttls)?;
        check_emit_mode(emit, &lowered)?;
        Ok(lowered)
    }

    /// The streaming operator graph a query would run, as text.
    /// Accepts the query with or without a leading `EXPLAIN`.
    pub fn explain(&self, sql: &str) -> Result<String> {
        let sql = strip_explain(sql);
        let lowered = if starts_with_keyword(sql, &["insert"]) {
            match self.plan_statement(sql)? {
                LogicalPlan::Dml(dml) => self.plan_insert(&dml, sql)?.0,
                _ => return Err(err!(Internal, "INSERT planned as something else")),
            }
        } else {
            self.plan_query(sql, &QueryOptions::default())?
        };
        let mut lines = Vec::new();
        for input in &lowered.streams {
            if self.views.contains_key(input) {
                lines.push(format!(
                    "View: {input} (shared: its nodes run once for every reader)"
                ));
                continue;
            }
            let source = self
                .sources
                .get(input)
                .ok_or_else(|| err!(Internal, "planned query reads an unknown stream"))?;
            lines.push(source.describe());
        }
        lines.push(lowered.plan.describe(&|name| self.views.contains_key(name)));
        Ok(lines.join("\n"))
    }

    /// Closes a query: its operators and their state go, and views it read
    /// can be dropped. A checkpoint taken after this restores into an
    /// engine that was set up, and had its queries closed, the same way.
    pub fn close_query(&mut self, id: QueryId) -> Result<()> {
        if !self.inserts.contains_key(&id) {
            self.query(id)?;
        }
        self.graph.remove_query(id)?;
        self.inserts.remove(&id);
        self.queries.retain(|q| q.id != id);
        self.fingerprint_parts.push(format!("close query {id}"));
        Ok(())
    }

    /// Tests only: makes operator `id` (as in a checkpoint's manifest) fail
    /// with EXECUTION whenever a call reaches it; `None` clears it. For
    /// fault-injection tests of all-or-nothing calls.
    #[doc(hidden)]
    pub fn inject_failure(&mut self, operator: Option<&str>) -> Result<()> {
        self.graph.inject_failure(operator)
    }

    /// The ids of every operator of every query, view and job, in the order
    /// a push runs them.
    pub fn operator_ids(&self) -> Vec<String> {
        self.graph.node_ids()
    }

    /// Result schema of a query.
    pub fn query_schema(&self, id: QueryId) -> Result<SchemaRef> {
        self.graph.output_schema(id)
    }

    /// Pushes a batch of events to a stream. Columns are matched by name.
    /// With the stream's default `bad_rows = 'reject'` a bad row rejects the
    /// whole push, which then changes nothing; with `'skip'` or
    /// `'dead_letter'` bad rows are dropped (and counted, or kept for
    /// [`Engine::take_dead_letters`]) and the good rows go in.
    pub fn push(&mut self, stream: &str, batch: &RecordBatch) -> Result<Vec<QueryOutput>> {
        self.push_checked(stream, batch, None)
    }

    /// Rows dropped by `bad_rows = 'dead_letter'` streams since the last call.
    pub fn take_dead_letters(&mut self) -> Vec<(String, BadRow)> {
        std::mem::take(&mut self.dead_letters)
    }

    /// `origin[i]` is the position in the push of row `i` (after bad lines
    /// were dropped by the JSON decoder).
    fn push_checked(
        &mut self,
        stream: &str,
        batch: &RecordBatch,
        origin: Option<&[usize]>,
    ) -> Result<Vec<QueryOutput>> {
        let source = self.source_mut(stream)?;
        if source.def().bad_rows == BadRowPolicy::Reject {
            return self.push_valid(stream, batch);
        }
        let now = self.wall_clock_millis;
        let source = self.source_mut(stream)?;
        let (good, mut bad) = split_bad_rows(source.def(), batch, now)?;
        for row in bad.iter_mut() {
            row.text = encode_rows(&batch.slice(row.row, 1)).ok().map(|json| {
                json.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            });
            if let Some(origin) = origin {
                row.row = origin.get(row.row).copied().unwrap_or(row.row);
            }
        }
        let outputs = self.push_valid(stream, &good)?;
        self.record_bad_rows(stream, bad);
        Ok(outputs)
    }

    fn record_bad_rows(&mut self, stream: &str, bad: Vec<BadRow>) {
        let Some(source) = self.sources.get_mut(stream) else {
            return;
        };
        source.count_bad_rows(bad.len() as u64);
        if source.def().bad_rows == BadRowPolicy::DeadLetter {
            self.dead_letters
                .extend(bad.into_iter().map(|row| (stream.to_string(), row)));
        }
    }

    fn push_valid(&mut self, stream: &str, batch: &RecordBatch) -> Result<Vec<QueryOutput>> {
        let now = self.wall_clock_millis;
        let mut source = self.source_mut(stream)?.clone();
        let input = source.ingest(batch, now)?;
        let rows = Message::Rows(Rows {
            batch: input.batch,
            row_watermarks: RowWatermarks::PerRow(input.row_watermarks),
            watermark_after: input.watermark,
            event_times: Some(Arc::new(input.event_times)),
            origin: None,
        });
        let outputs = self
            .graph
            .push(stream, vec![rows, Message::Watermark(input.watermark)])?;
        self.sources.insert(stream.to_string(), source);
        Ok(outputs.into_iter().map(QueryOutput::new).collect())
    }

    /// Runs a stream's new watermark through the graph; the source (moved
    /// on a copy) is kept only if that succeeds.
    fn commit_watermark(
        &mut self,
        source: StreamSource,
        watermark: EventTime,
    ) -> Result<Vec<QueryOutput>> {
        let name = source.def().name.clone();
        let outputs = self
            .graph
            .push(&name, vec![Message::Watermark(watermark)])?;
        self.sources.insert(name, source);
        Ok(outputs.into_iter().map(QueryOutput::new).collect())
    }

    /// Asserts that no more events at or before `millis` (epoch ms) will
    /// arrive on `stream`: its watermark moves there (never back) and the
    /// windows it completes are emitted.
    pub fn advance_watermark(&mut self, stream: &str, millis: i64) -> Result<Vec<QueryOutput>> {
        let mut source = self.source_mut(stream)?.clone();
        let target = millis_to_ticks(millis, source.def().event_time_unit);
        match source.advance_to(target)? {
            Some(watermark) => self.commit_watermark(source, watermark),
            None => Ok(Vec::new()),
        }
    }

    /// Tells the engine the wall-clock time (epoch ms). Streams declared
    /// with an idle timeout that have been quiet that long advance their
    /// watermark to `now - idle_timeout`; the windows this closes are emitted.
    pub fn tick(&mut self, now_millis: i64) -> Result<Vec<QueryOutput>> {
        let moved: Vec<(StreamSource, EventTime)> = self
            .sources
            .values()
            .filter_map(|source| {
                let mut moved = source.clone();
                let watermark = moved.on_wall_clock(now_millis)?;
                Some((moved, watermark))
            })
            .collect();
        let watermarks: Vec<(String, EventTime)> = moved
            .iter()
            .map(|(source, watermark)| (source.def().name.clone(), *watermark))
            .collect();
        let outputs = self.graph.atomically(|graph| {
            let mut outputs = push_watermarks(graph, &watermarks)?;
            outputs.extend(graph.tick(now_millis)?);
            Ok(outputs)
        })?;
        for (source, _) in moved {
            self.sources.insert(source.def().name.clone(), source);
        }
        self.wall_clock_millis = Some(now_millis);
        Ok(outputs.into_iter().map(QueryOutput::new).collect())
    }

    /// A consistent checkpoint of every stream's position and every query's
    /// state, taken between two pushes. The engine is left as it was.
    pub fn checkpoint(&mut self) -> Result<Checkpoint> {
        let streams = self.sources.values().map(StreamSource::position).collect();
        let mut operators = Vec::new();
        let mut blobs = Vec::new();
        for node in self.graph.snapshot()? {
            let (kind, meta, blob) = match node.state {
                Some((kind, state)) => {
                    let blob = match &state.batch {
                        Some(batch) => {
                            let name = format!("{}.arrow", node.id.replace('/', "-"));
                            let bytes = write_ipc(batch)?;
                            let reference = BlobRef {
                                name: name.clone(),
                                bytes: bytes.len() as u64,
                                crc32: crc32fast::hash(&bytes),
                            };
                            blobs.push((name, bytes));
                            Some(reference)
                        }
                        None => None,
                    };
                    (Some(kind.to_string()), state.meta, blob)
                }
                None => (None, serde_json::Value::Null, None),
            };
            operators.push(OperatorManifest {
                node: node.id,
                input_watermarks: node.input_watermarks,
                output_watermark: node.output_watermark,
                operator: kind,
                meta,
                blob,
            });
        }
        let mut tables = Vec::new();
        for (name, table) in &self.tables {
            let table = table.borrow();
            let bytes = write_ipc(&table.snapshot()?)?;
            // Operator blob names never hold a '/': these cannot clash.
            let blob = format!("table/{name}.arrow");
            tables.push(TableManifest {
                name: name.clone(),
                rows: table.len() as u64,
                blob: BlobRef {
                    name: blob.clone(),
                    bytes: bytes.len() as u64,
                    crc32: crc32fast::hash(&bytes),
                },
            });
            blobs.push((blob, bytes));
        }
        Ok(Checkpoint {
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                fingerprint: fingerprint(&self.fingerprint_parts),
                written_by: format!("riffle {}", env!("CARGO_PKG_VERSION")),
                streams,
                operators,
                tables,
            },
            blobs,
        })
    }

    /// Records the application's own position in `stream`'s source after
    /// the last push (a message sequence number, a log offset); checkpoints
    /// keep it and restore returns it.
    pub fn set_resume_token(&mut self, stream: &str, token: Option<String>) -> Result<()> {
        self.source_mut(stream)?.set_resume_token(token);
        Ok(())
    }

    /// Restores a checkpoint into this engine, which must have been set up
    /// with the same streams and queries (same SQL, same order). Returns each
    /// stream's position (offset, resume token): replay events from there. Everything is checked
    /// before anything changes; restore into a fresh engine.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<Vec<StreamManifest>> {
        checkpoint.verify()?;
        let manifest = &checkpoint.manifest;
        let ours = fingerprint(&self.fingerprint_parts);
        if manifest.fingerprint != ours {
            return Err(err!(
                CheckpointMismatch,
                "the checkpoint was taken of other streams or queries (fingerprint {} vs this engine's {ours}); \
                 create the same streams and queries, in the same order, before restoring, or start empty",
                manifest.fingerprint
            ));
        }
        // Decode everything first, so a bad blob changes nothing.
        let mut entries = Vec::new();
        for operator in &manifest.operators {
            let batch = match &operator.blob {
                Some(blob) => Some(read_ipc(checkpoint.blob(&blob.name)?)?),
                None => None,
            };
            let state = match &operator.operator {
                Some(kind) => Some((
                    kind.clone(),
                    OperatorState {
                        meta: operator.meta.clone(),
                        batch,
                    },
                )),
                None if batch.is_some() => {
                    return Err(err!(
                        CorruptCheckpoint,
                        "operator {} has a state blob but no state kind",
                        operator.node
                    ))
                }
                None => None,
            };
            entries.push(NodeRestore {
                id: operator.node.clone(),
                input_watermarks: operator.input_watermarks.clone(),
                output_watermark: operator.output_watermark,
                state,
            });
        }
        let mut stream_watermarks = BTreeMap::new();
        for stream in &manifest.streams {
            if !self.sources.contains_key(&stream.name) {
                return Err(err!(
                    CheckpointMismatch,
                    "the checkpoint has stream '{}', which this engine lacks",
                    stream.name
                ));
            }
            if stream_watermarks
                .insert(stream.name.clone(), stream.watermark)
                .is_some()
            {
                return Err(err!(
                    CorruptCheckpoint,
                    "the checkpoint names stream '{}' twice",
                    stream.name
                ));
            }
        }
        let tables = self.restored_tables(checkpoint)?;
        // Builds and checks every operator, then swaps them all in.
        self.graph.restore(&entries, &stream_watermarks)?;
        for (shared, table) in tables {
            *shared.borrow_mut() = table;
        }
        let mut positions = Vec::new();
        for stream in &manifest.streams {
            if let Some(source) = self.sources.get_mut(&stream.name) {
                source.restore(stream);
                positions.push(stream.clone());
            }
        }
        Ok(positions)
    }

    /// Every table's rows as the checkpoint holds them, checked, each with
    /// the table it replaces (nothing changes yet).
    fn restored_tables(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<(crate::table::SharedTable, LookupTable)>> {
        let held = &checkpoint.manifest.tables;
        let mut restored = Vec::new();
        for (name, shared) in &self.tables {
            let mut entries = held.iter().filter(|t| &t.name == name);
            let (Some(entry), None) = (entries.next(), entries.next()) else {
                return Err(err!(
                    CorruptCheckpoint,
                    "the checkpoint must hold the rows of table '{name}' once"
                ));
            };
            let batch = read_ipc(checkpoint.blob(&entry.blob.name)?)?;
            if batch.num_rows() as u64 != entry.rows {
                return Err(err!(
                    CorruptCheckpoint,
                    "the checkpoint says table '{name}' holds {} rows, its blob {}",
                    entry.rows,
                    batch.num_rows()
                ));
            }
            let mut table = LookupTable::new(Arc::clone(shared.borrow().def()))?;
            table.restore(&batch)?;
            restored.push((Rc::clone(shared), table));
        }
        if let Some(unknown) = held.iter().find(|t| !self.tables.contains_key(&t.name)) {
            return Err(err!(
                CheckpointMismatch,
                "the checkpoint has table '{}', which this engine lacks",
                unknown.name
            ));
        }
        Ok(restored)
    }

    /// Whether any stream has an idle timeout, so the caller should tick.
    pub fn needs_clock(&self) -> bool {
        self.sources
            .values()
            .any(|s| s.def().idle_timeout_millis.is_some() || s.def().max_future_millis.is_some())
            || self.graph.needs_clock()
    }

    /// Pushes JSON objects to a stream: newline-delimited, or one JSON array.
    pub fn push_json(&mut self, stream: &str, text: &str) -> Result<Vec<QueryOutput>> {
        let converted = array_to_ndjson(text);
        let text = converted.as_deref().unwrap_or(text);
        let source = self.source_mut(stream)?;
        let schema = Arc::clone(&source.def().schema);
        let policy = source.def().bad_rows;
        let error = match decode_ndjson(&schema, text) {
            Ok(batch) => return self.push_checked(stream, &batch, None),
            Err(error) => error,
        };
        if policy == BadRowPolicy::Reject {
            return Err(err!(InvalidInput, "stream '{stream}': {}", error.message()));
        }
        // Malformed JSON somewhere: decode line by line to keep the good lines.
        let mut good = Vec::new();
        let mut origin = Vec::new();
        let mut bad = Vec::new();
        for (line_number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match decode_ndjson(&schema, line) {
                Ok(batch) => {
                    origin.extend(std::iter::repeat_n(line_number, batch.num_rows()));
                    good.push(batch);
                }
                Err(error) => bad.push(BadRow {
                    row: line_number,
                    reason: error.message().to_string(),
                    text: Some(line.to_string()),
                }),
            }
        }
        self.record_bad_rows(stream, bad);
        let batch = arrow::compute::concat_batches(&decoding_schema(&schema), &good)?;
        self.push_checked(stream, &batch, Some(&origin))
    }

    /// Pushes events handed over column-wise (see [`crate::codec::columns`]).
    /// The batch is the one [`Engine::push_json`] would decode from the same
    /// events, so validation, bad-row reports and offsets are the same.
    /// `Ok(None)`, with nothing changed, when some value needs JSON's own
    /// judgement: push the events as NDJSON instead.
    pub fn push_columns(
        &mut self,
        stream: &str,
        columns: &ColumnarRows<'_>,
    ) -> Result<Option<Vec<QueryOutput>>> {
        let schema = Arc::clone(&self.source_mut(stream)?.def().schema);
        match decode_columns(&schema, columns)? {
            Some(batch) => self.push_checked(stream, &batch, None).map(Some),
            None => Ok(None),
        }
    }

    /// The declared schema of a stream.
    pub fn stream_schema(&self, stream: &str) -> Result<SchemaRef> {
        let catalog = self
            .catalog
            .read()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?;
        Ok(Arc::clone(&catalog.get(stream)?.schema))
    }

    /// Pushes Arrow IPC stream bytes (one or more record batches) to a
    /// stream. Columns are matched by name and cast to the declared types;
    /// timestamp columns keep their unit.
    pub fn push_arrow_ipc(&mut self, stream: &str, bytes: &[u8]) -> Result<Vec<QueryOutput>> {
        self.source_mut(stream)?;
        let batch = read_ipc(bytes).map_err(|e| {
            err!(
                InvalidInput,
                "stream '{stream}': not Arrow IPC stream data: {}",
                e.message()
            )
        })?;
        self.push(stream, &batch)
    }

    /// End of input on every stream: closes and emits all open windows.
    pub fn finish(&mut self) -> Result<Vec<QueryOutput>> {
        let finished: Vec<StreamSource> = self
            .sources
            .values()
            .map(|source| {
                let mut finished = source.clone();
                finished.finish();
                finished
            })
            .collect();
        let watermarks: Vec<(String, EventTime)> = finished
            .iter()
            .map(|source| (source.def().name.clone(), source.watermark()))
            .collect();
        let outputs = self
            .graph
            .atomically(|graph| push_watermarks(graph, &watermarks))?;
        for source in finished {
            self.sources.insert(source.def().name.clone(), source);
        }
        Ok(outputs.into_iter().map(QueryOutput::new).collect())
    }

    /// Counters of a query.
    pub fn query_metrics(&self, id: QueryId) -> Result<QueryMetrics> {
        let query = self.query(id)?;
        let operators = self.graph.metrics(id)?;
        let (mut events_in, mut bad_rows) = (0, 0);
        let mut watermark: Option<(EventTime, arrow::datatypes::TimeUnit)> = None;
        // Behind it now: a job started after the query feeds it too.
        for stream in &self.streams_behind(&query.inputs) {
            let source = self
                .sources
                .get(stream)
                .ok_or_else(|| err!(Internal, "query {id} reads a stream that is gone"))?;
            events_in += source.events_in();
            bad_rows += source.bad_rows();
            // What the query sees: for a stream fed by INSERT INTO, the
            // minimum over its feeders.
            let here = (
                self.graph.stream_watermark(stream),
                source.def().event_time_unit,
            );
            // Streams may count time in different units.
            if watermark.is_none_or(|there| in_nanos(here) < in_nanos(there)) {
                watermark = Some(here);
            }
        }
        let (watermark, unit) =
            watermark.ok_or_else(|| err!(Internal, "query {id} reads no stream"))?;
        Ok(QueryMetrics {
            events_in,
            bad_rows,
            late_events_dropped: operators.window.late_rows_dropped,
            watermark_millis: to_millis(watermark, unit),
            finished: watermark == END_OF_INPUT,
            open_windows: operators.open_windows,
            windows_emitted: operators.window.windows_emitted,
            state_bytes: operators.state_bytes,
            joins: operators.joins,
            lookups: operators.lookups,
        })
    }

    fn query(&self, id: QueryId) -> Result<&RunningQuery> {
        self.queries
            .iter()
            .find(|q| q.id == id)
            .ok_or_else(|| err!(UnknownQuery, "no query with id {id}"))
    }

    fn source_mut(&mut self, stream: &str) -> Result<&mut StreamSource> {
        if self.tables.contains_key(stream) {
            return Err(err!(
                InvalidInput,
                "'{stream}' is a table, not a stream: change its rows with upsert() and delete()"
            ));
        }
        if self.views.contains_key(stream) {
            return Err(err!(
                InvalidInput,
                "'{stream}' is a view: its rows come from its query; push to the streams it reads"
            ));
        }
        if !self.sources.contains_key(stream) {
            // Reuse the catalog's message, which lists the known streams.
            let catalog = self.catalog_read()?;
            return Err(catalog
                .get(stream)
                .err()
                .unwrap_or_else(|| err!(UnknownStream, "unknown stream '{stream}'")));
        }
        self.sources
            .get_mut(stream)
            .ok_or_else(|| err!(UnknownStream, "unknown stream '{stream}'"))
    }
}

/// Checks an `EMIT` clause against what the query does.
fn check_emit_mode(emit: Option<EmitMode>, plan: &StreamingPlan) -> Result<()> {
    match emit {
        Some(EmitMode::OnWindowClose) if !plan.has_window => Err(err!(
            Unsupported,
            "EMIT ON WINDOW CLOSE needs a window: aggregate FROM TUMBLE/HOP/CUMULATE/SESSION(...)"
        )),
        Some(EmitMode::OnUpdate) if !plan.is_changelog => Err(err!(
            Unsupported,
            "EMIT ON UPDATE applies to aggregates; this query emits each row as it arrives"
        )),
        Some(EmitMode::Every { .. }) if !plan.has_window => Err(err!(
            Unsupported,
            "EMIT EVERY applies to window aggregates; without a window use EMIT ON UPDATE"
        )),
        _ => Ok(()),
    }
}

/// Whether the statement starts with one of `keywords` (any case).
fn starts_with_keyword(sql: &str, keywords: &[&str]) -> bool {
    let statement = sql.trim_start();
    keywords.iter().any(|word| {
        statement
            .get(..word.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(word))
            && statement[word.len()..].starts_with(char::is_whitespace)
    })
}

/// The statement after a leading `EXPLAIN`, or the whole text.
fn strip_explain(sql: &str) -> &str {
    let trimmed = sql.trim_start();
    match trimmed.get(..7) {
        Some(word)
            if word.eq_ignore_ascii_case("explain")
                && trimmed[7..].starts_with(char::is_whitespace) =>
        {
            &trimmed[7..]
        }
        _ => sql,
    }
}

/// A watermark in nanoseconds, the ends of time kept at the ends.
fn in_nanos((watermark, unit): (EventTime, arrow::datatypes::TimeUnit)) -> i128 {
    match watermark {
        NO_WATERMARK => i128::MIN,
        END_OF_INPUT => i128::MAX,
        ticks => i128::from(ticks) * i128::from(nanos_per_unit(unit)),
    }
}

fn to_millis(watermark: EventTime, unit: arrow::datatypes::TimeUnit) -> Option<i64> {
    if watermark == NO_WATERMARK || watermark == END_OF_INPUT {
        return None;
    }
    let nanos = i128::from(watermark) * i128::from(nanos_per_unit(unit));
    i64::try_from(nanos.div_euclid(1_000_000)).ok()
}

/// Runs each stream's new watermark through the graph, in one transaction
/// when the caller opened one.
fn push_watermarks(
    graph: &mut Graph,
    watermarks: &[(String, EventTime)],
) -> Result<Vec<(QueryId, Emitted)>> {
    let mut outputs = Vec::new();
    for (stream, watermark) in watermarks {
        outputs.extend(graph.push(stream, vec![Message::Watermark(*watermark)])?);
    }
    Ok(outputs)
}

/// The schema of a table's key columns, in key order.
fn key_schema(def: &crate::catalog::TableDef) -> Result<SchemaRef> {
    Ok(Arc::new(def.schema.project(&def.primary_key)?))
}

/// JSON objects (NDJSON or one array) as a batch of `schema`.
fn decode_json_rows(schema: &SchemaRef, text: &str) -> Result<RecordBatch> {
    let converted = array_to_ndjson(text);
    decode_ndjson(schema, converted.as_deref().unwrap_or(text))
}
