//! SQL front end: our DDL (`CREATE STREAM`) and the window table functions
//! that let DataFusion plan streaming queries.

pub mod ddl;
pub mod emit;
pub mod flink_syntax;
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

use crate::catalog::{BadRowPolicy, StreamDef};
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
    if ast.columns.is_empty() {
        return Err(err!(SqlPlan, "stream '{name}' declares no columns"));
    }
    let table = CreateTableBuilder::new(ObjectName(vec![ObjectNamePart::Identifier(
        ast.name.clone(),
    )]))
    .columns(ast.columns)
    .build();
    let statement = DFStatement::Statement(Box::new(Statement::CreateTable(table)));
    let plan = futures::executor::block_on(state.statement_to_plan(statement))?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) = plan else {
        return Err(err!(Internal, "CREATE TABLE planned to an unexpected plan"));
    };
    let schema = create.input.schema().inner().clone();
    let Some(watermark) = ast.watermark else {
        return Err(err!(
            SqlPlan,
            "stream '{name}' has no event-time column; add WATERMARK FOR <column> AS <column> - INTERVAL '<n>' SECOND"
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
