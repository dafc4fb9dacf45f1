//! The statement check: exactly one statement, and only read-only kinds of statement.
//!
//! This is the first of three walls; the second is DataFusion's `SQLOptions` (no DDL, no
//! DML, no statements such as `SET`) applied to the plan, the third is the session itself,
//! which has no table factories, no file formats, no URL tables and no disk for spilling.

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::SqlError;

/// How deep an expression may nest before parsing stops (DataFusion's default is 50).
const RECURSION_LIMIT: usize = 64;

/// How many binary operators (`AND`, `OR`, `=`, `+`, ...) one expression may chain at
/// one level of parentheses. A chain parses without recursion but makes an expression tree
/// as deep as it is long, which DataFusion clones, plans and drops recursively: a `WHERE`
/// of 5,000 `OR`s overflowed the stack and aborted the process. Lists of values go in
/// `IN (...)`, whose commas chain nothing.
pub(crate) const MAX_CHAIN: usize = 1_000;

/// Parses `sql` and returns its one statement if the sandbox allows it.
pub(crate) fn checked_statement(sql: &str) -> Result<DfStatement, SqlError> {
    let dialect = GenericDialect {};
    check_chains(sql, &dialect)?;
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

/// Refuses a statement with an expression that chains more than [`MAX_CHAIN`] binary
/// operators, counted on its tokens (the tokenizer does not recurse, whatever the
/// statement). A chain ends at a comma, a clause or `CASE` keyword and a parenthesis; a
/// sign (`-1`) and `NOT` are no link in it.
fn check_chains(sql: &str, dialect: &GenericDialect) -> Result<(), SqlError> {
    // A statement that does not tokenize gets the parser's own, more precise message.
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return Ok(());
    };
    let longest = longest_chain(&tokens);
    if longest > MAX_CHAIN {
        return Err(SqlError::Refused(format!(
            "an expression chains {longest} operators (AND, OR, =, +, ...), more than the {MAX_CHAIN} allowed: \
             each one nests it a level deeper; write a list of values as `column IN (a, b, ...)`"
        )));
    }
    Ok(())
}

/// The most binary operators chained in one expression at one level of parentheses.
fn longest_chain(tokens: &[Token]) -> usize {
    // The chain so far at each open parenthesis, innermost last.
    let mut chains = vec![0usize];
    let mut longest = 0;
    // Whether the last token ends an operand, so that a `+`, `-` or `*` after it is a
    // binary operator rather than a sign or `count(*)`.
    let mut after_operand = false;
    // Whether the next AND is a BETWEEN's, which joins its bounds, not two conditions.
    let mut between = false;
    for token in tokens {
        let chain = chains.last_mut().expect("the outermost level stays");
        match token {
            Token::Whitespace(_) => continue,
            Token::LParen => {
                chains.push(0);
                after_operand = false;
            }
            Token::RParen => {
                if chains.len() > 1 {
                    chains.pop();
                }
                after_operand = true;
            }
            Token::Comma | Token::SemiColon => {
                *chain = 0;
                after_operand = false;
            }
            Token::Word(w) if w.keyword == Keyword::AND && between => {
                between = false;
                after_operand = false;
            }
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::AND | Keyword::OR | Keyword::LIKE | Keyword::ILIKE
                ) =>
            {
                *chain += 1;
                after_operand = false;
            }
            Token::Word(w) if ends_a_chain(w.keyword) => {
                *chain = 0;
                after_operand = w.keyword == Keyword::END;
            }
            // A name, or a literal spelt as a word: an operand.
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::NoKeyword | Keyword::NULL | Keyword::TRUE | Keyword::FALSE
                ) || w.quote_style.is_some() =>
            {
                after_operand = true;
            }
            // Any other keyword (BETWEEN, NOT, IS, IN, DISTINCT, BY, ...) is followed by an
            // operand, so a `-` after it is a sign. (A column named like a keyword is then
            // counted short, never long.)
            Token::Word(w) => {
                between |= w.keyword == Keyword::BETWEEN;
                after_operand = false;
            }
            Token::Plus | Token::Minus | Token::Mul => {
                if after_operand {
                    *chain += 1;
                }
                after_operand = false;
            }
            t if is_binary_operator(t) => {
                *chain += 1;
                after_operand = false;
            }
            _ => after_operand = true,
        }
        longest = longest.max(*chains.last().expect("the outermost level stays"));
    }
    longest
}

/// Keywords that start a new expression: clauses, and the parts of a `CASE`.
fn ends_a_chain(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::UNION
            | Keyword::EXCEPT
            | Keyword::INTERSECT
            | Keyword::JOIN
            | Keyword::ON
            | Keyword::USING
            | Keyword::AS
            | Keyword::CASE
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
    )
}

/// Binary operators written as symbols, but for `+`, `-` and `*`, which are also signs
/// and a star.
fn is_binary_operator(token: &Token) -> bool {
    matches!(
        token,
        Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Arrow
            | Token::LongArrow
    )
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
