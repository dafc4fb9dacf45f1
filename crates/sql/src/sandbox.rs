//! The statement check: exactly one statement, and only read-only kinds of statement.
//!
//! This is the first of three walls; the second is DataFusion's `SQLOptions` (no DDL, no
//! DML, no statements such as `SET`) applied to the plan, the third is the session itself,
//! which has no table factories, no file formats, no URL tables and no disk for spilling.

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::SqlError;

/// How deep an expression may nest before parsing stops (DataFusion's default is 50).
const RECURSION_LIMIT: usize = 64;

/// How deep expressions may nest, counting every level (operators, parentheses,
/// functions, `CASE`, subqueries). A chain of operators (`a OR b OR ...`) parses without
/// recursion but nests one level per operator, and DataFusion clones, plans and drops such
/// trees recursively: a `WHERE` of 5,000 `OR`s overflowed the stack and aborted the
/// process. Lists of values go in `IN (...)`, which nests nothing.
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 1_000;

/// The longest query text taken. It bounds how deep a tree the parser can build (one
/// level per operator), and so the stack that dropping a refused tree needs.
pub(crate) const MAX_QUERY_BYTES: usize = 1 << 20;

/// The stack of the thread that parses and checks a query: a refused tree as deep as
/// [`MAX_QUERY_BYTES`] allows is dropped there, recursively. Address space, not memory.
const PARSE_STACK: usize = 512 << 20;

/// Parses `sql` and returns its one statement if the sandbox allows it. Parsed on a
/// thread of its own, whose stack holds whatever tree the text can make, so that a
/// refused one is dropped there; a statement returned nests at most
/// [`MAX_EXPRESSION_DEPTH`] deep, which the query threads' stacks hold.
pub(crate) fn checked_statement(sql: &str) -> Result<DfStatement, SqlError> {
    if sql.len() > MAX_QUERY_BYTES {
        return Err(SqlError::Refused(format!(
            "the query is {} bytes, over the {MAX_QUERY_BYTES} allowed; write long lists of values as `column IN (a, b, ...)` or narrow the question",
            sql.len()
        )));
    }
    std::thread::scope(|scope| {
        // Under a tight `ulimit -v` the large stack may not be had: a smaller one still
        // holds any tree a query of a few hundred kilobytes makes, and without a thread
        // the query is parsed here, as it was before there was one.
        for stack in [PARSE_STACK, PARSE_STACK / 8] {
            let spawned = std::thread::Builder::new()
                .name("halo-sql-parse".into())
                .stack_size(stack)
                .spawn_scoped(scope, || parse_and_check(sql));
            if let Ok(parser) = spawned {
                return parser
                    .join()
                    .map_err(|_| SqlError::Runtime("the SQL parser failed".into()))?;
            }
        }
        parse_and_check(sql)
    })
}

fn parse_and_check(sql: &str) -> Result<DfStatement, SqlError> {
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
    // First: what follows (and everything after this thread) walks the tree recursively.
    check_depth(&statement)?;
    check(&statement)?;
    Ok(statement)
}

/// Refuses a statement whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`]. The
/// walk stops one level past the bound, so it never recurses further itself.
fn check_depth(statement: &DfStatement) -> Result<(), SqlError> {
    let inner = match statement {
        DfStatement::Statement(s) => s.as_ref(),
        DfStatement::Explain(e) => return check_depth(&e.statement),
        // Refused by `check` without being walked.
        _ => return Ok(()),
    };
    let mut depth = Depth::default();
    if inner.visit(&mut depth).is_break() {
        return Err(SqlError::Refused(format!(
            "the query nests expressions more than {MAX_EXPRESSION_DEPTH} levels deep (each operator of a chain such as `a OR b OR ...` is a level); write a list of values as `column IN (a, b, ...)`"
        )));
    }
    Ok(())
}

/// How deep the walk is in expressions, for [`check_depth`].
#[derive(Default)]
struct Depth {
    now: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now += 1;
        match self.now > MAX_EXPRESSION_DEPTH {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
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
        "{kind} is not allowed: {why}; write one SELECT (or WITH ... SELECT, EXPLAIN, DESCRIBE, SHOW TABLES) over spans, traces, tool_calls, llm_calls, messages"
    ))
}
