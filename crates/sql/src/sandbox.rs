//! The statement check: exactly one statement, and only read-only kinds of statement.
//!
//! This is the first of three walls; the second is DataFusion's `SQLOptions` (no DDL, no
//! DML, no statements such as `SET`) applied to the plan, the third is the session itself,
//! which has no table factories, no file formats, no URL tables and no disk for spilling.

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::SqlError;

/// How deep an expression may nest before parsing stops (DataFusion's default is 50).
const RECURSION_LIMIT: usize = 64;

/// Parses `sql` and returns its one statement if the sandbox allows it.
pub(crate) fn checked_statement(sql: &str) -> Result<DfStatement, SqlError> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .build()
        .map_err(|e| SqlError::Syntax(parse_message(&e)))?;
    let mut statements = parser
        .parse_statements()
        .map_err(|e| SqlError::Syntax(parse_message(&e)))?;
    match statements.len() {
        0 => {
            return Err(SqlError::Refused(
                "the query is empty; write one SELECT statement".into(),
            ))
        }
        1 => {}
        n => {
            return Err(SqlError::Refused(format!(
                "exactly one statement is allowed per query, found {n} (separated by ';')"
            )))
        }
    }
    let statement = statements.pop_front().expect("one statement");
    check(&statement)?;
    Ok(statement)
}

fn parse_message(e: &datafusion::error::DataFusionError) -> String {
    match e {
        datafusion::error::DataFusionError::SQL(p, _) => p.to_string(),
        other => other.to_string(),
    }
}

fn check(statement: &DfStatement) -> Result<(), SqlError> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_)
            | Statement::ExplainTable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. } => Ok(()),
            other => Err(refusal(&describe(other))),
        },
        DfStatement::Explain(e) => check(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(SqlError::Refused(
            "CREATE EXTERNAL TABLE is not allowed: queries cannot read or write files; the tables are traces, spans, tool_calls, llm_calls and messages".into(),
        )),
        DfStatement::CopyTo(_) => Err(SqlError::Refused(
            "COPY is not allowed: queries cannot write files (use `halo export TRACES --parquet DIR` to take the tables elsewhere)".into(),
        )),
        DfStatement::Reset(_) => Err(refusal("RESET")),
    }
}

/// The statement's leading keywords, e.g. "INSERT", "CREATE TABLE", "SET".
fn describe(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(6).collect();
    let Some(first) = words.first() else {
        return "this statement".into();
    };
    let first = first.to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "TRUNCATE" | "SHOW" => {
            let mut kind = vec![first.clone()];
            for w in words.iter().skip(1) {
                let w = w.to_ascii_uppercase();
                let modifier = matches!(
                    w.as_str(),
                    "OR" | "REPLACE" | "TEMPORARY" | "TEMP" | "EXTERNAL" | "UNIQUE" | "IF"
                );
                kind.push(w);
                if !modifier {
                    break;
                }
            }
            kind.join(" ")
        }
        _ => first,
    }
}

fn refusal(kind: &str) -> SqlError {
    let why = match kind.split_whitespace().next().unwrap_or("") {
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE" => "the tables are read-only",
        "CREATE" | "DROP" | "ALTER" => "the schema cannot be changed",
        "SET" | "RESET" => "engine options cannot be changed",
        "COPY" | "LOAD" | "INSTALL" | "ATTACH" => "queries cannot read or write files",
        _ => "only read-only queries are allowed",
    };
    SqlError::Refused(format!(
        "{kind} is not allowed: {why}; write one SELECT (or WITH ... SELECT, EXPLAIN, DESCRIBE) over spans, traces, tool_calls, llm_calls, messages"
    ))
}
