//! `CREATE STREAM`: the one statement DataFusion's parser does not know.
//!
//! ```sql
//! CREATE STREAM trades (
//!     symbol VARCHAR,
//!     price DOUBLE,
//!     ts TIMESTAMP,
//!     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
//! ) WITH (idle_timeout = INTERVAL '5' SECOND)
//! ```
//!
//! Parsed with sqlparser's own building blocks (column definitions and
//! expressions), so types and expressions follow the same grammar as the
//! rest of the SQL.
//!
//! Flink's `CREATE [TEMPORARY] TABLE t (..., WATERMARK FOR ...) WITH
//! ('connector' = '...', ...)` is the same statement: its quoted options
//! (connector, format, ...) are kept as written and shown by `explain()`;
//! Riffle's own options are unquoted names.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, ColumnDef, ColumnOption, Expr as SqlExpr, Ident,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::is_word;
use crate::err;
use crate::error::{ErrorCode, Result, RiffleError};

/// A parsed `CREATE STREAM` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    /// Written as `CREATE TABLE` (Flink's): without a watermark, a table
    /// the application fills, not a stream.
    pub is_table: bool,
    /// Stream name as written.
    pub name: Ident,
    /// Column definitions as written.
    pub columns: Vec<ColumnDef>,
    /// The `WATERMARK FOR` clause, if any.
    pub watermark: Option<WatermarkClause>,
    /// `PRIMARY KEY (columns) [NOT ENFORCED]`: what makes a row a new
    /// version of an earlier one (for temporal joins).
    pub primary_key: Vec<Ident>,
    /// `WITH (key = value, ...)` options with unquoted names (Riffle's).
    pub options: Vec<(Ident, SqlExpr)>,
    /// `WITH ('key' = 'value', ...)` options with quoted names (Flink's
    /// connector options), as written.
    pub connector_options: Vec<(String, String)>,
}

/// `WATERMARK FOR <column> AS <column> [- <interval>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkClause {
    /// The event-time column.
    pub column: Ident,
    /// The tolerated disorder; `None` for `AS <column>` (in-order input).
    pub delay: Option<SqlExpr>,
}

/// Consumes `CREATE STREAM` (`Some(false)`), or Flink's `CREATE
/// [TEMPORARY] TABLE` (`Some(true)`).
fn parse_create_keywords(parser: &mut Parser) -> Option<bool> {
    if parser.parse_keywords(&[Keyword::CREATE, Keyword::STREAM]) {
        return Some(false);
    }
    (parser.parse_keywords(&[Keyword::CREATE, Keyword::TABLE])
        || parser.parse_keywords(&[Keyword::CREATE, Keyword::TEMPORARY, Keyword::TABLE]))
    .then_some(true)
}

/// Whether `sql` starts with `CREATE STREAM` (or Flink's `CREATE TABLE`).
pub fn is_create_stream(sql: &str) -> bool {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .map(|mut p| parse_create_keywords(&mut p).is_some())
        .unwrap_or(false)
}

/// Parses a `CREATE STREAM` (or Flink `CREATE TABLE`) statement.
pub fn parse_create_stream(sql: &str) -> Result<CreateStream> {
    let mut parser = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .map_err(parse_error)?;
    let Some(is_table) = parse_create_keywords(&mut parser) else {
        return Err(err!(SqlParse, "expected CREATE STREAM"));
    };
    let name = parser.parse_identifier().map_err(parse_error)?;
    parser.expect_token(&Token::LParen).map_err(parse_error)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key = Vec::new();
    loop {
        if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            if !primary_key.is_empty() {
                return Err(err!(SqlParse, "a stream has at most one PRIMARY KEY"));
            }
            parser.expect_token(&Token::LParen).map_err(parse_error)?;
            primary_key = parser
                .parse_comma_separated(|p| p.parse_identifier())
                .map_err(parse_error)?;
            parser.expect_token(&Token::RParen).map_err(parse_error)?;
            // Flink's keys are never checked; Riffle's neither.
            let _ = parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        } else if is_word(&parser.peek_token().token, "watermark") {
            parser.next_token();
            if watermark.is_some() {
                return Err(err!(SqlParse, "a stream has at most one WATERMARK clause"));
            }
            watermark = Some(parse_watermark(&mut parser)?);
        } else {
            columns.push(parser.parse_column_def().map_err(parse_error)?);
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen).map_err(parse_error)?;
    // Flink's `id STRING PRIMARY KEY NOT ENFORCED`, on the column itself.
    for column in &mut columns {
        let before = column.options.len();
        column
            .options
            .retain(|o| !matches!(o.option, ColumnOption::PrimaryKey(_)));
        if column.options.len() != before {
            if !primary_key.is_empty() {
                return Err(err!(SqlParse, "a stream has at most one PRIMARY KEY"));
            }
            primary_key.push(column.name.clone());
        }
    }
    let (options, connector_options) = parse_with_options(&mut parser)?;
    let _ = parser.consume_token(&Token::SemiColon);
    let rest = parser.peek_token();
    if rest.token != Token::EOF {
        return Err(err!(
            SqlParse,
            "unexpected '{}' after the CREATE STREAM statement at {}",
            rest.token,
            rest.span.start
        ));
    }
    Ok(CreateStream {
        is_table,
        name,
        columns,
        watermark,
        primary_key,
        options,
        connector_options,
    })
}

/// Riffle's options (unquoted names) and connector options (quoted names).
type WithOptions = (Vec<(Ident, SqlExpr)>, Vec<(String, String)>);

/// `WITH (name = expr, 'key' = 'value', ...)`, if present.
fn parse_with_options(parser: &mut Parser) -> Result<WithOptions> {
    let (mut options, mut connector) = (Vec::new(), Vec::new());
    if !parser.parse_keyword(Keyword::WITH) {
        return Ok((options, connector));
    }
    parser.expect_token(&Token::LParen).map_err(parse_error)?;
    loop {
        let next = parser.peek_token();
        if let Token::SingleQuotedString(key) = &next.token {
            let key = key.clone();
            parser.next_token();
            parser.expect_token(&Token::Eq).map_err(parse_error)?;
            let value = parser.next_token();
            let Token::SingleQuotedString(value) = value.token else {
                return Err(err!(
                    SqlParse,
                    "connector option '{key}' takes a quoted value ('{key}' = '...'), found {} at {}",
                    value.token,
                    value.span.start
                ));
            };
            connector.push((key, value));
        } else {
            let key = parser.parse_identifier().map_err(parse_error)?;
            parser.expect_token(&Token::Eq).map_err(parse_error)?;
            options.push((key, parser.parse_expr().map_err(parse_error)?));
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen).map_err(parse_error)?;
    Ok((options, connector))
}

fn parse_watermark(parser: &mut Parser) -> Result<WatermarkClause> {
    parser.expect_keyword(Keyword::FOR).map_err(parse_error)?;
    let column = parser.parse_identifier().map_err(parse_error)?;
    parser.expect_keyword(Keyword::AS).map_err(parse_error)?;
    let expr = parser.parse_expr().map_err(parse_error)?;
    let same_column = |e: &SqlExpr| matches!(e, SqlExpr::Identifier(id) if id.value.eq_ignore_ascii_case(&column.value));
    let delay = match expr {
        ref e if same_column(e) => None,
        SqlExpr::BinaryOp {
            ref left,
            op: BinaryOperator::Minus,
            ref right,
        } if same_column(left) => Some(right.as_ref().clone()),
        other => {
            return Err(err!(
                Unsupported,
                "watermark expression `{other}` is not supported; write WATERMARK FOR {col} AS {col} - INTERVAL '2' SECOND (bounded out-of-orderness)",
                col = column.value
            ))
        }
    };
    Ok(WatermarkClause { column, delay })
}

fn parse_error(error: ParserError) -> RiffleError {
    RiffleError::new(ErrorCode::SqlParse, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_and_watermark() {
        let ddl = parse_create_stream(
            "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND);",
        )
        .unwrap();
        assert_eq!(ddl.name.value, "trades");
        assert_eq!(ddl.columns.len(), 3);
        let wm = ddl.watermark.unwrap();
        assert_eq!(wm.column.value, "ts");
        assert_eq!(wm.delay.unwrap().to_string(), "INTERVAL '2' SECOND");
    }

    #[test]
    fn parses_with_options() {
        let ddl = parse_create_stream(
            "CREATE STREAM t (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (idle_timeout = INTERVAL '5' SECOND)",
        )
        .unwrap();
        assert_eq!(ddl.options.len(), 1);
        assert_eq!(ddl.options[0].0.value, "idle_timeout");
    }

    #[test]
    fn flinks_create_table_is_a_stream_with_its_connector_options_kept() {
        for create in ["CREATE TABLE", "create temporary table"] {
            let sql = format!(
                "{create} orders (id BIGINT, note STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
                 WITH ('connector' = 'kafka', 'properties.bootstrap.servers' = 'h:9092', idle_timeout = INTERVAL '1' SECOND)"
            );
            assert!(is_create_stream(&sql));
            let ddl = parse_create_stream(&sql).unwrap();
            assert_eq!(ddl.name.value, "orders");
            assert_eq!(ddl.columns.len(), 3);
            assert_eq!(
                ddl.connector_options,
                [
                    ("connector".to_string(), "kafka".to_string()),
                    (
                        "properties.bootstrap.servers".to_string(),
                        "h:9092".to_string()
                    )
                ]
            );
            assert_eq!(ddl.options.len(), 1);
        }
        assert!(!is_create_stream("CREATE VIEW v AS SELECT 1"));
        let error = parse_create_stream(
            "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 5)",
        )
        .unwrap_err();
        assert_eq!(error.code(), ErrorCode::SqlParse);
        assert!(error.message().contains("quoted value"), "{error}");
    }

    #[test]
    fn watermark_may_come_first_or_have_no_delay() {
        let ddl =
            parse_create_stream("create stream s (watermark for t as t, t timestamp)").unwrap();
        assert_eq!(ddl.columns.len(), 1);
        assert!(ddl.watermark.unwrap().delay.is_none());
    }

    #[test]
    fn rejects_malformed_statements_with_clear_errors() {
        let cases = [
            ("CREATE STREAM trades symbol VARCHAR", ErrorCode::SqlParse),
            (
                "CREATE STREAM t (ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '1' SECOND)",
                ErrorCode::Unsupported,
            ),
            (
                "CREATE STREAM t (ts TIMESTAMP) garbage",
                ErrorCode::SqlParse,
            ),
            (
                "CREATE STREAM t (ts TIMESTAMP, WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts)",
                ErrorCode::SqlParse,
            ),
        ];
        for (sql, code) in cases {
            let error = parse_create_stream(sql).unwrap_err();
            assert_eq!(error.code(), code, "{sql}: {error}");
        }
    }

    #[test]
    fn recognises_the_statement() {
        assert!(is_create_stream("  create stream x (a int)"));
        // Flink's CREATE TABLE declares a stream too.
        assert!(is_create_stream("CREATE TABLE x (a int)"));
        assert!(!is_create_stream(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION 'x'"
        ));
        assert!(!is_create_stream("SELECT 1"));
    }
}
