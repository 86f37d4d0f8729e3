//! SQL front end: our DDL (`CREATE STREAM`) and the window table functions
//! that let DataFusion plan streaming queries.

pub mod ddl;
pub mod emit;
pub mod flink_syntax;
pub mod hints;
pub mod lookup_table;
pub mod not_in;
pub mod session;
pub mod stream_table;
pub mod versioned;
pub mod window_tvf;

use arrow::datatypes::{IntervalMonthDayNano, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    helpers::stmt_create_table::CreateTableBuilder, Expr as SqlExpr, ExprWithAlias, Ident,
    ObjectName, ObjectNamePart, Statement,
};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::{BadRowPolicy, StreamDef, TableDef};
use crate::err;
use crate::error::Result;
use crate::time::interval::interval_to_units;
use ddl::CreateStream;

/// Whether `token` is the unquoted word `word` (any case): a keyword as
/// written, not a quoted name that happens to spell it.
pub(crate) fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Normalises an identifier like DataFusion does: unquoted names are lower-cased.
pub fn normalize_ident(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// Turns a parsed `CREATE STREAM` into a stream definition. Column types go
/// through DataFusion's own `CREATE TABLE` planning, so every SQL type
/// DataFusion knows is accepted with DataFusion's meaning.
pub fn plan_create_stream(state: &SessionState, ast: CreateStream) -> Result<StreamDef> {
    let name = normalize_ident(&ast.name);
    let schema = declared_schema(state, &ast, "stream")?;
    let Some(watermark) = ast.watermark else {
        return Err(err!(
            SqlPlan,
            "stream '{name}' has no event-time column; add WATERMARK FOR <column> AS <column> - INTERVAL '<n>' SECOND (a table the application fills by key is CREATE TABLE {name} (..., PRIMARY KEY (<column>)))"
        ));
    };
    let delay = match watermark.delay {
        None => IntervalMonthDayNano::new(0, 0, 0),
        Some(expr) => interval_literal(state, &expr, "the watermark delay")?,
    };
    let mut def = StreamDef::try_new(name, schema, &normalize_ident(&watermark.column), delay)?;
    def.connector_options = ast.connector_options.clone();
    for column in &ast.primary_key {
        let column = normalize_ident(column);
        if def.schema.column_with_name(&column).is_none() {
            return Err(err!(
                SqlPlan,
                "PRIMARY KEY names '{column}', which is not a column of stream '{}'",
                def.name
            ));
        }
        if def.primary_key.contains(&column) {
            return Err(err!(SqlPlan, "PRIMARY KEY names '{column}' twice"));
        }
        def.primary_key.push(column);
    }
    for (key, value) in &ast.options {
        match normalize_ident(key).as_str() {
            "idle_timeout" => {
                let interval = interval_literal(state, value, "idle_timeout")?;
                let millis = interval_to_units(interval, TimeUnit::Millisecond, "idle_timeout")?;
                if millis <= 0 {
                    return Err(err!(SqlPlan, "idle_timeout must be a positive interval"));
                }
                def.idle_timeout_millis = Some(millis);
            }
            "max_future" => {
                let interval = interval_literal(state, value, "max_future")?;
                let millis = interval_to_units(interval, TimeUnit::Millisecond, "max_future")?;
                if millis < 0 {
                    return Err(err!(SqlPlan, "max_future must not be negative"));
                }
                def.max_future_millis = Some(millis);
            }
            "bad_rows" => {
                let text = value.to_string();
                def.bad_rows = match text.trim_matches('\'').to_lowercase().as_str() {
                    "reject" => BadRowPolicy::Reject,
                    "skip" => BadRowPolicy::Skip,
                    "dead_letter" => BadRowPolicy::DeadLetter,
                    _ => {
                        return Err(err!(
                            SqlPlan,
                            "bad_rows is 'reject', 'skip' or 'dead_letter', not {text}"
                        ))
                    }
                };
            }
            other => {
                return Err(err!(
                    SqlPlan,
                    "unknown stream option '{other}'; known: idle_timeout = INTERVAL '5' SECOND, max_future = INTERVAL '1' HOUR, bad_rows = 'reject' | 'skip' | 'dead_letter'"
                ))
            }
        }
    }
    Ok(def)
}

/// The columns of a `CREATE STREAM` / `CREATE TABLE` as an Arrow schema,
/// typed by DataFusion's own `CREATE TABLE` planning.
fn declared_schema(
    state: &SessionState,
    ast: &CreateStream,
    kind: &str,
) -> Result<arrow::datatypes::SchemaRef> {
    if ast.columns.is_empty() {
        return Err(err!(
            SqlPlan,
            "{kind} '{}' declares no columns",
            normalize_ident(&ast.name)
        ));
    }
    let table = CreateTableBuilder::new(ObjectName(vec![ObjectNamePart::Identifier(
        ast.name.clone(),
    )]))
    .columns(ast.columns.clone())
    .build();
    let statement = DFStatement::Statement(Box::new(Statement::CreateTable(table)));
    let plan = futures::executor::block_on(state.statement_to_plan(statement))?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) = plan else {
        return Err(err!(Internal, "CREATE TABLE planned to an unexpected plan"));
    };
    Ok(create.input.schema().inner().clone())
}

/// Whether `ast` declares a table (Flink's `CREATE TABLE` without a
/// watermark), not a stream.
pub fn declares_table(ast: &CreateStream) -> bool {
    ast.is_table && ast.watermark.is_none()
}

/// Turns a parsed `CREATE TABLE t (..., PRIMARY KEY (k))` without a
/// watermark into a table definition: the key is required (rows are
/// upserted and deleted by it), Riffle's stream options are refused.
pub fn plan_create_table(state: &SessionState, ast: CreateStream) -> Result<TableDef> {
    let name = normalize_ident(&ast.name);
    let schema = declared_schema(state, &ast, "table")?;
    if ast.primary_key.is_empty() {
        return Err(err!(
            SqlPlan,
            "table '{name}' has no PRIMARY KEY: a table's rows are upserted and deleted by key, so declare one (CREATE TABLE {name} (..., PRIMARY KEY (<column>))); a stream of events needs WATERMARK FOR <column> AS <column> - INTERVAL '<n>' SECOND"
        ));
    }
    if let Some((key, _)) = ast.options.first() {
        return Err(err!(
            SqlPlan,
            "table '{name}': option '{}' is a stream option; a table (no WATERMARK) takes none",
            normalize_ident(key)
        ));
    }
    let mut primary_key = Vec::new();
    for column in &ast.primary_key {
        let column = normalize_ident(column);
        let Some((index, field)) = schema.column_with_name(&column) else {
            return Err(err!(
                SqlPlan,
                "PRIMARY KEY names '{column}', which is not a column of table '{name}'"
            ));
        };
        if primary_key.contains(&index) {
            return Err(err!(SqlPlan, "PRIMARY KEY names '{column}' twice"));
        }
        if !arrow::row::RowConverter::supports_fields(&[arrow::row::SortField::new(
            field.data_type().clone(),
        )]) {
            return Err(err!(
                Unsupported,
                "table '{name}': a primary key column of type {} is not supported",
                field.data_type()
            ));
        }
        primary_key.push(index);
    }
    Ok(TableDef {
        name,
        schema,
        primary_key,
        connector_options: ast.connector_options,
    })
}

/// Evaluates a SQL interval literal such as `INTERVAL '2' SECOND`.
pub fn interval_literal(
    state: &SessionState,
    expr: &SqlExpr,
    what: &str,
) -> Result<IntervalMonthDayNano> {
    let with_alias = ExprWithAlias {
        expr: expr.clone(),
        alias: None,
    };
    let logical = state.create_logical_expr_from_sql_expr(with_alias, &DFSchema::empty())?;
    interval_from_expr(&logical, what)
}

/// Reads an interval out of a planned literal expression.
pub fn interval_from_expr(expr: &Expr, what: &str) -> Result<IntervalMonthDayNano> {
    match expr {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) => Ok(*v),
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => Ok(IntervalMonthDayNano::new(
            0,
            v.days,
            i64::from(v.milliseconds) * 1_000_000,
        )),
        Expr::Literal(ScalarValue::IntervalYearMonth(Some(v)), _) => {
            Ok(IntervalMonthDayNano::new(*v, 0, 0))
        }
        other => Err(err!(
            SqlPlan,
            "{what} must be an interval literal such as INTERVAL '1' MINUTE, found {other}"
        )),
    }
}
