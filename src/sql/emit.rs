//! The `EMIT` clause at the end of a streaming query, in RisingWave's style:
//!
//! ```sql
//! SELECT ... FROM TUMBLE(...) GROUP BY ... EMIT ON WINDOW CLOSE  -- default for windows
//! SELECT ... FROM trades GROUP BY symbol EMIT ON UPDATE          -- default without a window
//! SELECT ... FROM TUMBLE(...) GROUP BY ... EMIT EVERY INTERVAL '1' SECOND  -- early results, periodically
//! ```
//!
//! The clause is found with sqlparser's tokenizer (so `EMIT` inside a string
//! or a comment is not mistaken for it) and cut off before DataFusion parses
//! the rest.

use datafusion::sql::sqlparser::ast::Expr as SqlExpr;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::err;
use crate::error::Result;
pub use crate::time::emit::EmitMode;

/// A parsed `EMIT` clause; `EVERY` carries its interval for the planner to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum EmitClause {
    /// `ON WINDOW CLOSE` or `ON UPDATE`.
    Mode(EmitMode),
    /// `EVERY <interval>`.
    Every(Box<SqlExpr>),
}

/// Splits `sql` into the query and its `EMIT` clause, if any.
pub fn split_emit_clause(sql: &str) -> Result<(&str, Option<EmitClause>)> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| err!(SqlParse, "{e}"))?;
    let mut depth = 0i32;
    let mut emit_at = None;
    for (i, token) in tokens.iter().enumerate() {
        match &token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w)
                if depth == 0
                    && w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("emit") =>
            {
                emit_at = Some(i);
            }
            _ => {}
        }
    }
    let Some(at) = emit_at else {
        return Ok((sql, None));
    };
    let words: Vec<String> = tokens[at + 1..]
        .iter()
        .filter(|t| {
            !matches!(
                t.token,
                Token::Whitespace(_) | Token::SemiColon | Token::EOF
            )
        })
        .map(|t| t.token.to_string().to_uppercase())
        .collect();
    let start = tokens[at].span.start;
    let offset = byte_offset(sql, start.line, start.column)
        .ok_or_else(|| err!(Internal, "EMIT clause position out of range"))?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let clause = match words.as_slice() {
        ["ON", "WINDOW", "CLOSE"] => EmitClause::Mode(EmitMode::OnWindowClose),
        ["ON", "UPDATE"] => EmitClause::Mode(EmitMode::OnUpdate),
        ["EVERY", ..] => {
            // The text after `EMIT EVERY` is an interval expression.
            let rest = sql[offset..].trim_start();
            let rest = rest.get(4..).unwrap_or("").trim_start();
            let rest = rest.get(5..).unwrap_or("").trim_end().trim_end_matches(';');
            let expr = Parser::new(&GenericDialect {})
                .try_with_sql(rest)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| {
                    err!(SqlParse, "EMIT EVERY needs an interval such as INTERVAL '1' SECOND: {e}")
                })?;
            EmitClause::Every(Box::new(expr))
        }
        _ => {
            return Err(err!(
                SqlParse,
                "unknown EMIT clause `EMIT {}`; write EMIT ON WINDOW CLOSE, EMIT ON UPDATE or EMIT EVERY INTERVAL '1' SECOND",
                words.join(" ")
            ))
        }
    };
    Ok((&sql[..offset], Some(clause)))
}

/// Byte offset of a 1-based (line, column-in-characters) location.
fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    let mut offset = 0;
    for (index, content) in text.split_inclusive('\n').enumerate() {
        if index as u64 + 1 == line {
            let chars = usize::try_from(column.checked_sub(1)?).ok()?;
            let within: usize = content.chars().take(chars).map(char::len_utf8).sum();
            return Some(offset + within);
        }
        offset += content.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_clause_off() {
        let (query, mode) =
            split_emit_clause("SELECT a FROM t GROUP BY a\n  emit on update;").unwrap();
        assert_eq!(query.trim_end(), "SELECT a FROM t GROUP BY a");
        assert_eq!(mode, Some(EmitClause::Mode(EmitMode::OnUpdate)));
        let (query, mode) =
            split_emit_clause("SELECT 'EMIT ON UPDATE' AS émit FROM t EMIT ON WINDOW CLOSE")
                .unwrap();
        assert_eq!(query.trim_end(), "SELECT 'EMIT ON UPDATE' AS émit FROM t");
        assert_eq!(mode, Some(EmitClause::Mode(EmitMode::OnWindowClose)));
        let (_, mode) =
            split_emit_clause("SELECT a FROM t EMIT EVERY INTERVAL '2' SECOND;").unwrap();
        assert_eq!(mode.map(|m| matches!(m, EmitClause::Every(_))), Some(true));
        assert_eq!(split_emit_clause("SELECT 1").unwrap(), ("SELECT 1", None));
    }

    #[test]
    fn rejects_unknown_clauses() {
        let error = split_emit_clause("SELECT a FROM t EMIT SOMETIMES").unwrap_err();
        assert!(error.message().contains("EMIT ON WINDOW CLOSE"), "{error}");
    }
}
