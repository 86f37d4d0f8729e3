//! Flink's query hints: `SELECT /*+ STATE_TTL('o' = '1h', 'r' = '30 min') */`.
//!
//! SQL parsers drop comments, so hints are read from the query's tokens
//! before DataFusion parses it. `STATE_TTL` is the one hint Riffle reads:
//! how long each input's state lives, by input (a stream, a view, or an
//! alias in the query). Riffle measures it in event time, as it does the
//! `stateTtlMs` option, so results do not depend on when rows arrive.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::err;
use crate::error::Result;

/// The `STATE_TTL` hint's entries, as written: (input name, milliseconds).
pub fn state_ttl_hints(sql: &str) -> Result<Vec<(String, i64)>> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| err!(SqlParse, "{e}"))?;
    let mut entries: Vec<(String, i64)> = Vec::new();
    for token in tokens {
        let Token::Whitespace(Whitespace::MultiLineComment(text)) = token else {
            continue;
        };
        let Some(hints) = text.strip_prefix('+') else {
            continue;
        };
        for (name, options) in parse_hints(hints)? {
            // Flink's table hint of connector options: ignored, as the
            // connector options of CREATE TABLE are (rows come from pushes).
            if name.eq_ignore_ascii_case("options") {
                continue;
            }
            if !name.eq_ignore_ascii_case("state_ttl") {
                return Err(err!(
                    Unsupported,
                    "query hint {name} is not supported; Riffle reads STATE_TTL('input' = '1h', ...) (and ignores OPTIONS(...))"
                ));
            }
            let Some(options) = options else {
                return Err(err!(
                    SqlParse,
                    "STATE_TTL takes 'input' = 'duration' options: write /*+ STATE_TTL('orders' = '1h') */"
                ));
            };
            if options.is_empty() {
                return Err(err!(
                    SqlParse,
                    "STATE_TTL names no input: write /*+ STATE_TTL('orders' = '1h') */"
                ));
            }
            for (input, duration) in options {
                let millis = duration_millis(&duration)?;
                if entries.iter().any(|(known, _)| known == &input) {
                    return Err(err!(SqlParse, "STATE_TTL names '{input}' twice"));
                }
                entries.push((input, millis));
            }
        }
    }
    Ok(entries)
}

/// A hint: its name and its `'key' = 'value'` options.
/// `None` options: not in the `'key' = 'value'` form (`BROADCAST(t)`).
type Hint = (String, Option<Vec<(String, String)>>);

/// `NAME('k' = 'v', ...), NAME2(...)`: each hint's name and options.
fn parse_hints(text: &str) -> Result<Vec<Hint>> {
    let bad = |what: &str| err!(SqlParse, "query hint /*+{text}*/: {what}");
    let tokens: Vec<Token> = Tokenizer::new(&GenericDialect {}, text)
        .tokenize()
        .map_err(|e| bad(&e.to_string()))?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut hints = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let Token::Word(name) = &tokens[at] else {
            return Err(bad("expected a hint name"));
        };
        at += 1;
        let mut options = Some(Vec::new());
        if tokens.get(at) == Some(&Token::LParen) {
            let close = tokens[at..]
                .iter()
                .position(|t| *t == Token::RParen)
                .map(|p| at + p)
                .ok_or_else(|| bad("expected )"))?;
            let inside = &tokens[at + 1..close];
            at = close + 1;
            for option in inside.split(|t| *t == Token::Comma) {
                match option {
                    [Token::SingleQuotedString(key), Token::Eq, Token::SingleQuotedString(value)] => {
                        if let Some(options) = options.as_mut() {
                            options.push((key.clone(), value.clone()));
                        }
                    }
                    _ => options = None,
                }
            }
        }
        hints.push((name.value.clone(), options));
        match tokens.get(at) {
            None => {}
            Some(Token::Comma) => at += 1,
            Some(_) => return Err(bad("expected , between hints")),
        }
    }
    Ok(hints)
}

/// A Flink duration (`'90 s'`, `'1h'`, `'2 days'`, `'500'` = ms) in
/// milliseconds; positive.
fn duration_millis(text: &str) -> Result<i64> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let bad = || {
        err!(
            SqlParse,
            "STATE_TTL duration '{text}' is not a duration such as '30 s', '10 min', '1 h' or '2 d'"
        )
    };
    let number: i64 = number.parse().map_err(|_| bad())?;
    let per_unit: i64 = match unit.trim().to_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(bad()),
    };
    let millis = number.checked_mul(per_unit).ok_or_else(bad)?;
    if millis <= 0 {
        return Err(err!(
            SqlParse,
            "STATE_TTL duration '{text}' must be positive (state that never expires is a join without a TTL)"
        ));
    }
    Ok(millis)
}

/// The stream (or view) a scan reads: through a window table function
/// (`TUMBLE(trades, ...)`), the stream under it.
fn scanned_stream(scan: &datafusion::logical_expr::TableScan) -> String {
    let provider = datafusion::datasource::source_as_provider(&scan.source).ok();
    match provider
        .as_ref()
        .and_then(|p| p.downcast_ref::<super::stream_table::StreamTableProvider>())
    {
        Some(stream) => stream.stream().name.clone(),
        None => scan.table_name.table().to_string(),
    }
}

/// Each hint's input as the stream (or view) it reads: an alias of the
/// query (`FROM orders AS o`) or a stream's own name.
pub fn resolve_inputs(plan: &LogicalPlan, hints: Vec<(String, i64)>) -> Result<Vec<(String, i64)>> {
    let mut aliases: Vec<(String, Vec<String>)> = Vec::new();
    let mut scanned: Vec<String> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::SubqueryAlias(alias) => {
                let mut tables = Vec::new();
                let _ = alias.input.apply_with_subqueries(|inner| {
                    if let LogicalPlan::TableScan(scan) = inner {
                        tables.push(scanned_stream(scan));
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
                aliases.push((alias.alias.table().to_string(), tables));
            }
            LogicalPlan::TableScan(scan) => scanned.push(scanned_stream(scan)),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut resolved: Vec<(String, i64)> = Vec::new();
    let named = |known: &str, input: &str| known == input || known == input.to_lowercase();
    for (input, millis) in &hints {
        let (input, millis) = (input.clone(), *millis);
        let stream = match aliases.iter().find(|(alias, _)| named(alias, &input)) {
            Some((_, tables)) => match tables.as_slice() {
                [table] => table.clone(),
                _ => {
                    return Err(err!(
                        Unsupported,
                        "STATE_TTL names '{input}', which reads several streams; name the streams"
                    ))
                }
            },
            None if scanned.iter().any(|s| named(s, &input)) => {
                let stream = scanned.iter().find(|s| named(s, &input));
                stream.cloned().unwrap_or(input.clone())
            }
            None => {
                return Err(err!(
                    SqlPlan,
                    "STATE_TTL names '{input}', which this query does not read (it reads {})",
                    scanned.join(", ")
                ))
            }
        };
        match resolved.iter().find(|(known, _)| known == &stream) {
            Some((_, other)) if *other != millis => {
                return Err(err!(
                    Unsupported,
                    "STATE_TTL gives stream '{stream}' two TTLs (through '{input}'): a self-join's inputs share one"
                ))
            }
            Some(_) => {}
            None => resolved.push((stream, millis)),
        }
    }
    // A stream read twice (a self-join) takes its TTL through each of its
    // aliases, or it would set the state of an input the hint leaves out.
    for (stream, _) in &resolved {
        if scanned.iter().filter(|s| *s == stream).count() < 2 {
            continue;
        }
        let readers: Vec<&String> = aliases
            .iter()
            .filter(|(_, tables)| tables.as_slice() == std::slice::from_ref(stream))
            .map(|(alias, _)| alias)
            .collect();
        let hinted = |alias: &str| hints.iter().any(|(input, _)| named(alias, input));
        if readers.len() < 2 || !readers.iter().all(|alias| hinted(alias)) {
            return Err(err!(
                Unsupported,
                "STATE_TTL sets stream '{stream}', which this query reads more than once: hint each of its aliases ({}) with the same TTL",
                readers.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flinks_state_ttl_hint_and_its_durations() {
        let sql = "SELECT /*+ STATE_TTL('o' = '1h', 'r'='90 s') */ * FROM o JOIN r ON o.k = r.k -- /*+ not a hint */";
        assert_eq!(
            state_ttl_hints(sql).unwrap(),
            vec![("o".to_string(), 3_600_000), ("r".to_string(), 90_000)]
        );
        for (text, millis) in [("500", 500), ("2 d", 172_800_000), ("10min", 600_000)] {
            assert_eq!(duration_millis(text).unwrap(), millis);
        }
        assert!(
            state_ttl_hints("SELECT '/*+ STATE_TTL(''a'' = ''1h'') */' FROM t")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (sql, says) in [
            (
                "SELECT /*+ BROADCAST(t) */ * FROM t",
                "BROADCAST is not supported",
            ),
            (
                "SELECT /*+ STATE_TTL('a' = 'soon') */ * FROM t",
                "not a duration",
            ),
            (
                "SELECT /*+ STATE_TTL('a' = '0 s') */ * FROM t",
                "must be positive",
            ),
            (
                "SELECT /*+ STATE_TTL('a' = '1h', 'a' = '2h') */ * FROM t",
                "twice",
            ),
            (
                "SELECT /*+ STATE_TTL('a') */ * FROM t",
                "takes 'input' = 'duration'",
            ),
            ("SELECT /*+ STATE_TTL */ * FROM t", "names no input"),
            (
                "SELECT /*+ STATE_TTL('a' = '99999999999999999 d') */ * FROM t",
                "not a duration",
            ),
        ] {
            let error = state_ttl_hints(sql).unwrap_err();
            assert!(error.message().contains(says), "{sql}: {error}");
        }
    }
}
