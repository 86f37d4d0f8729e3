//! Flink's window table function syntax, rewritten into Riffle's before
//! parsing (sqlparser cannot parse `TABLE t` or `DESCRIPTOR(ts)` as
//! function arguments):
//!
//! ```text
//! TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' MINUTE))        -> TUMBLE(t, ts, INTERVAL '10' MINUTE)
//! TABLE(HOP(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts),
//!           SLIDE => INTERVAL '1' MINUTE, SIZE => INTERVAL '5' MINUTE)) -> HOP(t, ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
//! TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
//!                                                                      -> SESSION(t, ts, INTERVAL '5' MINUTE, k)
//! ```
//!
//! Flink's `SESSION` without `PARTITION BY` makes sessions over all rows;
//! it becomes `SESSION(t, ts, gap, NULL)`, so the planner can tell it from
//! Riffle's own form, whose sessions are per `GROUP BY` key. Only the text
//! of the call changes: everything else in the statement stays as written.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::is_word;
use crate::err;
use crate::error::Result;

/// A token of the statement, without whitespace, and where its text is.
struct Piece {
    token: Token,
    start: usize,
    end: usize,
}

/// The statement with every Flink-style window table function call in
/// Riffle's syntax (borrowed unchanged when it has none).
pub fn rewrite_window_tvfs(sql: &str) -> Result<Cow<'_, str>> {
    if !sql.to_ascii_uppercase().contains("TABLE") {
        return Ok(Cow::Borrowed(sql));
    }
    // A statement that does not tokenize is left to the parser's error.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(Cow::Borrowed(sql));
    };
    let pieces = pieces(sql, &tokens);
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut i = 0;
    while i < pieces.len() {
        if let Some((kind, open, close)) = call_at(&pieces, i) {
            let call = rewrite_call(sql, kind, &pieces[open + 1..close])?;
            out.push_str(&sql[copied..pieces[i].start]);
            out.push_str(&call);
            // The outer TABLE( ... ) closes right after the call.
            copied = pieces[close + 1].end;
            i = close + 2;
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(sql));
    }
    out.push_str(&sql[copied..]);
    Ok(Cow::Owned(out))
}

/// Flink's event-time temporal join: `rates FOR SYSTEM_TIME AS OF o.ts`
/// becomes `VERSIONED(rates, 'o.ts')`, a table function the planner knows
/// (sqlparser's generic dialect does not parse table versions).
pub fn rewrite_temporal_tables(sql: &str) -> Result<Cow<'_, str>> {
    if !sql.to_ascii_uppercase().contains("SYSTEM_TIME") {
        return Ok(Cow::Borrowed(sql));
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(Cow::Borrowed(sql));
    };
    let pieces = pieces(sql, &tokens);
    let text = |from: usize, to: usize| sql[pieces[from].start..pieces[to].end].trim();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut copied = 0;
    let mut i = 1;
    while i + 3 < pieces.len() {
        let at = |k: usize, word: &str| word_at(pieces.get(i + k), word);
        if !(at(0, "FOR") && at(1, "SYSTEM_TIME") && at(2, "AS") && at(3, "OF")) {
            i += 1;
            continue;
        }
        if !matches!(pieces[i - 1].token, Token::Word(_)) {
            return Err(err!(
                SqlParse,
                "FOR SYSTEM_TIME AS OF follows a stream's name: rates FOR SYSTEM_TIME AS OF o.ts AS r"
            ));
        }
        // The time: a column, perhaps qualified (o.ts).
        let first = i + 4;
        let mut last = first;
        if !matches!(pieces.get(first).map(|p| &p.token), Some(Token::Word(_))) {
            return Err(err!(
                SqlParse,
                "FOR SYSTEM_TIME AS OF takes the other side's event-time column, e.g. o.ts"
            ));
        }
        while matches!(pieces.get(last + 1).map(|p| &p.token), Some(Token::Period))
            && matches!(pieces.get(last + 2).map(|p| &p.token), Some(Token::Word(_)))
        {
            last += 2;
        }
        if matches!(pieces.get(last + 1).map(|p| &p.token), Some(Token::LParen)) {
            return Err(err!(
                Unsupported,
                "FOR SYSTEM_TIME AS OF {}(): processing-time temporal joins are not supported; join as of the other side's event-time column, e.g. o.ts",
                text(first, last)
            ));
        }
        // `rates FOR SYSTEM_TIME AS OF r.ts AS r`: its own time, not the
        // other side's.
        let table = text(i - 1, i - 1);
        let alias = match pieces.get(last + 1) {
            Some(p) if is_word(&p.token, "AS") => pieces.get(last + 2),
            other => other,
        };
        let qualifier = (last > first).then(|| text(first, last - 2));
        let own = [Some(table), alias.map(|p| sql[p.start..p.end].trim())];
        if let Some(q) =
            qualifier.filter(|q| own.iter().flatten().any(|o| o.eq_ignore_ascii_case(q)))
        {
            return Err(err!(
                Unsupported,
                "FOR SYSTEM_TIME AS OF {}: a temporal join reads {table} as of the other side's event time, not {q}'s own",
                text(first, last)
            ));
        }
        out.push_str(&sql[copied..pieces[i - 1].start]);
        out.push_str(&format!(
            "{}({}, '{}') ",
            crate::sql::versioned::VERSIONED,
            text(i - 1, i - 1),
            text(first, last).replace('\'', "''")
        ));
        copied = pieces[last].end;
        i = last + 1;
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(sql));
    }
    out.push_str(&sql[copied..]);
    Ok(Cow::Owned(out))
}

/// Byte ranges of the non-whitespace tokens (the tokenizer counts lines
/// and columns in characters; a token ends where the next one starts).
fn pieces(sql: &str, tokens: &[TokenWithSpan]) -> Vec<Piece> {
    // Token starts only move forward: one pass over the text finds them.
    let mut chars = sql.char_indices().peekable();
    let (mut line, mut column) = (1u64, 1u64);
    let mut starts = Vec::with_capacity(tokens.len());
    for token in tokens {
        let wanted = (token.span.start.line, token.span.start.column);
        while let Some(&(_, c)) = chars.peek() {
            if (line, column) >= wanted {
                break;
            }
            chars.next();
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        starts.push(chars.peek().map_or(sql.len(), |&(i, _)| i));
    }
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .map(|(i, t)| Piece {
            token: t.token.clone(),
            start: starts[i],
            end: starts.get(i + 1).copied().unwrap_or(sql.len()),
        })
        .collect()
}

/// Whether `piece` is there and is the unquoted word `word`.
fn word_at(piece: Option<&Piece>, word: &str) -> bool {
    piece.is_some_and(|p| is_word(&p.token, word))
}

/// At `TABLE ( KIND (`: the window kind, and the positions of the call's
/// parentheses (the outer `)` follows the closing one).
fn call_at(pieces: &[Piece], i: usize) -> Option<(&'static str, usize, usize)> {
    if !word_at(pieces.get(i), "TABLE")
        || !matches!(pieces.get(i + 1)?.token, Token::LParen)
        || !matches!(pieces.get(i + 3)?.token, Token::LParen)
    {
        return None;
    }
    let kind = ["TUMBLE", "HOP", "CUMULATE", "SESSION"]
        .into_iter()
        .find(|k| word_at(pieces.get(i + 2), k))?;
    let open = i + 3;
    let close = matching(pieces, open)?;
    matches!(pieces.get(close + 1)?.token, Token::RParen).then_some((kind, open, close))
}

/// The `)` matching the `(` at `open`.
fn matching(pieces: &[Piece], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, piece) in pieces.iter().enumerate().skip(open) {
        match piece.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Flink's parameter names, in Riffle's positional order.
fn parameters(kind: &str) -> &'static [&'static str] {
    match kind {
        "TUMBLE" => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
        "HOP" => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
        "CUMULATE" => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"],
        _ => &["DATA", "TIMECOL", "GAP"],
    }
}

/// `KIND(args)` in Riffle's syntax, from the pieces between its parentheses.
fn rewrite_call(sql: &str, kind: &str, inner: &[Piece]) -> Result<String> {
    let names = parameters(kind);
    let usage = || {
        format!(
            "{kind}(TABLE t, DESCRIPTOR(time_column), ...) takes {}",
            names.join(", ")
        )
    };
    let mut values: Vec<Option<&[Piece]>> = vec![None; names.len()];
    for (position, arg) in split_arguments(inner).into_iter().enumerate() {
        let (slot, value) = match (arg.first().map(|p| &p.token), arg.get(1).map(|p| &p.token)) {
            (Some(Token::Word(word)), Some(Token::RArrow)) => {
                let slot = names
                    .iter()
                    .position(|n| word.value.eq_ignore_ascii_case(n))
                    .ok_or_else(|| {
                        err!(
                            SqlParse,
                            "{kind} has no parameter {}; {}",
                            word.value,
                            usage()
                        )
                    })?;
                (slot, &arg[2..])
            }
            _ => (position, arg),
        };
        if slot >= names.len() || values[slot].is_some() || value.is_empty() {
            return Err(err!(SqlParse, "{}", usage()));
        }
        values[slot] = Some(value);
    }
    let text = |pieces: &[Piece]| -> String {
        match (pieces.first(), pieces.last()) {
            (Some(first), Some(last)) => sql[first.start..last.end].trim_end().to_string(),
            _ => String::new(),
        }
    };
    // DATA: TABLE name [PARTITION BY keys].
    let data = values[0].ok_or_else(|| err!(SqlParse, "{}", usage()))?;
    if !word_at(data.first(), "TABLE") || data.len() < 2 {
        return Err(err!(
            SqlParse,
            "the first argument of {kind} is TABLE followed by a stream or view; {}",
            usage()
        ));
    }
    let partition_at = data.iter().position(|p| is_word(&p.token, "PARTITION"));
    let name = &data[1..partition_at.unwrap_or(data.len())];
    if !is_name(name) {
        return Err(err!(
            SqlParse,
            "the first argument of {kind} is TABLE followed by a stream or view name, found TABLE {}; {}",
            text(name),
            usage()
        ));
    }
    let table = text(name);
    let partition = match partition_at {
        Some(at) if kind != "SESSION" => {
            return Err(err!(
                SqlParse,
                "PARTITION BY belongs to SESSION, not {kind}: {}",
                text(&data[at..])
            ))
        }
        Some(at) if word_at(data.get(at + 1), "BY") && data.len() > at + 2 => {
            let keys = &data[at + 2..];
            let keys = match (
                keys.first().map(|p| &p.token),
                keys.last().map(|p| &p.token),
            ) {
                (Some(Token::LParen), Some(Token::RParen)) => &keys[1..keys.len() - 1],
                _ => keys,
            };
            let names = split_arguments(keys);
            if !names.iter().all(|key| is_name(key)) {
                return Err(err!(
                    SqlParse,
                    "PARTITION BY takes column names, found {}; {}",
                    text(keys),
                    usage()
                ));
            }
            Some(text(keys))
        }
        Some(_) => return Err(err!(SqlParse, "PARTITION BY needs columns; {}", usage())),
        None => None,
    };
    // TIMECOL: DESCRIPTOR(column).
    let time = values[1].ok_or_else(|| err!(SqlParse, "{}", usage()))?;
    let time = match time {
        [descriptor, open, column @ .., close]
            if matches!(&descriptor.token, Token::Word(w) if w.value.eq_ignore_ascii_case("DESCRIPTOR"))
                && matches!(open.token, Token::LParen)
                && matches!(close.token, Token::RParen)
                && is_name(column) =>
        {
            text(column)
        }
        _ => {
            return Err(err!(
                SqlParse,
                "the time column of {kind} is DESCRIPTOR(column); {}",
                usage()
            ))
        }
    };
    let mut args = vec![table, time];
    for (slot, value) in values.iter().enumerate().skip(2) {
        match value {
            Some(value) => args.push(text(value)),
            // Only a trailing OFFSET may be left out.
            None if names[slot] == "OFFSET" => {}
            None => {
                return Err(err!(
                    SqlParse,
                    "{kind} needs its {} argument; {}",
                    names[slot],
                    usage()
                ))
            }
        }
    }
    if kind == "SESSION" {
        args.push(partition.unwrap_or_else(|| "NULL".to_string()));
    }
    Ok(format!("{kind}({})", args.join(", ")))
}

/// Whether `pieces` are one name: words joined by dots.
fn is_name(pieces: &[Piece]) -> bool {
    !pieces.is_empty()
        && pieces.iter().enumerate().all(|(i, p)| match p.token {
            Token::Word(_) => i % 2 == 0,
            Token::Period => i % 2 == 1 && i + 1 < pieces.len(),
            _ => false,
        })
}

/// The arguments between a call's parentheses, split at top-level commas.
fn split_arguments(inner: &[Piece]) -> Vec<&[Piece]> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, piece) in inner.iter().enumerate() {
        match piece.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                args.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() || !args.is_empty() {
        args.push(&inner[start..]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        rewrite_window_tvfs(sql).unwrap().into_owned()
    }

    #[test]
    fn flinks_window_calls_become_riffles() {
        assert_eq!(
            rewritten(
                "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) AS w"
            ),
            "SELECT * FROM TUMBLE(t, ts, INTERVAL '10' MINUTE) AS w"
        );
        assert_eq!(
            rewritten(
                "SELECT 1 FROM TABLE(\n  HOP(DATA => TABLE trades, SIZE => INTERVAL '1' MINUTE,\n TIMECOL => DESCRIPTOR(ts), SLIDE => INTERVAL '10' SECOND))"
            ),
            "SELECT 1 FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE)"
        );
        assert_eq!(
            rewritten("FROM table(cumulate(table t, descriptor(ts), INTERVAL '1' SECOND, INTERVAL '1' MINUTE, INTERVAL '5' SECOND))"),
            "FROM CUMULATE(t, ts, INTERVAL '1' SECOND, INTERVAL '1' MINUTE, INTERVAL '5' SECOND)"
        );
        assert_eq!(
            rewritten("FROM TABLE(SESSION(TABLE t PARTITION BY (k, j), DESCRIPTOR(ts), INTERVAL '5' SECOND))"),
            "FROM SESSION(t, ts, INTERVAL '5' SECOND, k, j)"
        );
        assert_eq!(
            rewritten("FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND))"),
            "FROM SESSION(t, ts, INTERVAL '5' SECOND, NULL)"
        );
        // Two calls, multi-byte text around them, a literal with a quote.
        assert_eq!(
            rewritten("SELECT 'é''s' FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) UNION ALL SELECT 'ü' FROM TABLE(TUMBLE(TABLE \"B\", DESCRIPTOR(\"T s\"), INTERVAL '2' SECOND))"),
            "SELECT 'é''s' FROM TUMBLE(a, ts, INTERVAL '1' SECOND) UNION ALL SELECT 'ü' FROM TUMBLE(\"B\", \"T s\", INTERVAL '2' SECOND)"
        );
        // Tabs, CRLF line ends, comments inside the call, a qualified name.
        assert_eq!(
            rewritten("SELECT\t'ö'\r\nFROM\tTABLE( -- a comment\r\n TUMBLE(TABLE s.t /* x */, DESCRIPTOR(ts),\tINTERVAL '1' SECOND) ) x"),
            "SELECT\t'ö'\r\nFROM\tTUMBLE(s.t, ts, INTERVAL '1' SECOND) x"
        );
        // Riffle's own syntax, and text without a call, are left alone.
        for sql in [
            "SELECT * FROM TUMBLE(t, ts, INTERVAL '1' SECOND)",
            "SELECT 'TABLE(TUMBLE(' FROM t",
            "SELECT f(a => 1) FROM t",
            "CREATE TABLE t (a INT)",
        ] {
            assert!(
                matches!(rewrite_window_tvfs(sql).unwrap(), Cow::Borrowed(_)),
                "{sql}"
            );
        }
    }

    #[test]
    fn a_long_statement_is_rewritten_in_one_pass() {
        // 100k list items on one line: offsets are found in one pass, not
        // by walking the line again for every token.
        let items: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) WHERE v IN ({})",
            items.join(", ")
        );
        assert_eq!(
            rewritten(&sql),
            format!(
                "SELECT * FROM TUMBLE(t, ts, INTERVAL '1' SECOND) WHERE v IN ({})",
                items.join(", ")
            )
        );
    }

    #[test]
    fn malformed_calls_say_what_is_expected() {
        for (sql, says) in [
            ("FROM TABLE(TUMBLE(t, DESCRIPTOR(ts), INTERVAL '1' SECOND))", "TABLE followed by"),
            ("FROM TABLE(TUMBLE(TABLE t, ts, INTERVAL '1' SECOND))", "DESCRIPTOR(column)"),
            ("FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts, x), INTERVAL '1' SECOND))", "DESCRIPTOR(column)"),
            ("FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(a) + (b), INTERVAL '1' SECOND))", "DESCRIPTOR(column)"),
            ("FROM TABLE(TUMBLE(TABLE (t), DESCRIPTOR(ts), INTERVAL '1' SECOND))", "stream or view name"),
            ("FROM TABLE(SESSION(TABLE t PARTITION BY (a) + (b), DESCRIPTOR(ts), INTERVAL '1' SECOND))", "column names"),
            ("FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts)))", "needs its SIZE"),
            ("FROM TABLE(TUMBLE(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), WIDTH => INTERVAL '1' SECOND))", "no parameter WIDTH"),
            ("FROM TABLE(TUMBLE(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND))", "belongs to SESSION"),
            ("FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), SIZE => INTERVAL '1' SECOND, SIZE => INTERVAL '1' SECOND))", "takes DATA"),
        ] {
            let error = rewrite_window_tvfs(sql).expect_err(sql);
            assert_eq!(error.code(), crate::error::ErrorCode::SqlParse, "{sql}");
            assert!(error.message().contains(says), "{sql}: {error}");
        }
    }
}
