//! A sqlx error's kind, as the error kind of the call it ended.

use sqlx::error::ErrorKind as DbKind;
use sqlx::Error;

/// SQLSTATE codes by name (PostgreSQL's spelling), the ones services meet most.
const SQLSTATES: [&str; 24] = [
    "23505 unique_violation",
    "23503 foreign_key_violation",
    "23502 not_null_violation",
    "23514 check_violation",
    "23P01 exclusion_violation",
    "40001 serialization_failure",
    "40P01 deadlock_detected",
    "42601 syntax_error",
    "42501 insufficient_privilege",
    "42P01 undefined_table",
    "42703 undefined_column",
    "42883 undefined_function",
    "42P07 duplicate_table",
    "22P02 invalid_text_representation",
    "22001 string_data_right_truncation",
    "22003 numeric_value_out_of_range",
    "22012 division_by_zero",
    "25P02 in_failed_sql_transaction",
    "53300 too_many_connections",
    "55P03 lock_not_available",
    "57014 query_canceled",
    "57P01 admin_shutdown",
    "08006 connection_failure",
    "28P01 invalid_password",
];

/// SQLSTATE classes by name, for codes not in [`SQLSTATES`].
const CLASSES: [&str; 14] = [
    "08 connection_exception",
    "0A feature_not_supported",
    "22 data_exception",
    "23 integrity_constraint_violation",
    "25 invalid_transaction_state",
    "28 invalid_authorization_specification",
    "40 transaction_rollback",
    "42 syntax_error_or_access_rule_violation",
    "53 insufficient_resources",
    "54 program_limit_exceeded",
    "55 object_not_in_prerequisite_state",
    "57 operator_intervention",
    "58 system_error",
    "XX internal_error",
];

/// SQLite's primary result codes by name (an extended code's low byte is its primary code).
const SQLITE: [(u32, &str); 12] = [
    (1, "SQLITE_ERROR"),
    (3, "SQLITE_PERM"),
    (5, "SQLITE_BUSY"),
    (6, "SQLITE_LOCKED"),
    (7, "SQLITE_NOMEM"),
    (8, "SQLITE_READONLY"),
    (10, "SQLITE_IOERR"),
    (11, "SQLITE_CORRUPT"),
    (13, "SQLITE_FULL"),
    (14, "SQLITE_CANTOPEN"),
    (19, "SQLITE_CONSTRAINT"),
    (20, "SQLITE_MISMATCH"),
];

/// The error kind a failed statement or connection wait is counted under: the database's kind
/// for a database error (`23505 unique_violation` for a SQLSTATE, `unique_violation` for a
/// constraint sqlx names on other databases, `SQLITE_BUSY`…), else sqlx's variant
/// (`RowNotFound`, `PoolTimedOut`, `Io`…). Always one of a fixed set of names, so kinds
/// cannot grow without bound.
///
/// ```
/// assert_eq!(monitor_sqlx::error_kind(&sqlx::Error::RowNotFound), "RowNotFound");
/// assert_eq!(monitor_sqlx::error_kind(&sqlx::Error::PoolTimedOut), "PoolTimedOut");
/// ```
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Database(db) => database(db.as_ref()),
        Error::RowNotFound => "RowNotFound",
        Error::PoolTimedOut => "PoolTimedOut",
        Error::PoolClosed => "PoolClosed",
        Error::Io(_) => "Io",
        Error::Tls(_) => "Tls",
        Error::Protocol(_) => "Protocol",
        Error::Configuration(_) => "Configuration",
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::TypeNotFound { .. } => "TypeNotFound",
        Error::ColumnIndexOutOfBounds { .. } => "ColumnIndexOutOfBounds",
        Error::ColumnNotFound(_) => "ColumnNotFound",
        Error::ColumnDecode { .. } => "ColumnDecode",
        Error::Encode(_) => "Encode",
        Error::Decode(_) => "Decode",
        Error::WorkerCrashed => "WorkerCrashed",
        _ => "sqlx::Error",
    }
}

fn database(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    // A SQLSTATE: five characters of digits and capitals.
    let sqlstate =
        code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if sqlstate {
        if let Some(name) = SQLSTATES.iter().find(|s| s.starts_with(code)) {
            return name;
        }
        if let Some(class) = CLASSES.iter().find(|c| c.starts_with(&code[..2])) {
            return class;
        }
    }
    match db.kind() {
        DbKind::UniqueViolation => return "unique_violation",
        DbKind::ForeignKeyViolation => return "foreign_key_violation",
        DbKind::NotNullViolation => return "not_null_violation",
        DbKind::CheckViolation => return "check_violation",
        _ => {}
    }
    if let Ok(n) = code.parse::<u32>() {
        if let Some((_, name)) = SQLITE.iter().find(|(c, _)| *c == n & 0xff) {
            return name;
        }
    }
    "database_error"
}
