//! Error kinds: how a returned error is named in the statistics.

use std::error::Error;
use std::io;

/// Names the kind of an error, for the per-kind error counts of `#[monitored]` functions.
///
/// Without it, an `Err(e)` is counted under the short name of `e`'s type (`ParseIntError`); with
/// it, under the name it returns, such as the variant of an error enum. `#[derive(ErrorKind)]`
/// implements it with each variant's name. [`std::io::Error`] is named by its
/// [`ErrorKind`](std::io::ErrorKind) (`NotFound`, `TimedOut`, …).
///
/// Names must be `'static`; a site keeps 64 distinct kinds apart and counts the rest as `other`.
///
/// # Examples
///
/// ```
/// use monitor_core::{monitored, ErrorKind};
///
/// #[derive(Debug, ErrorKind)]
/// enum FetchError {
///     Timeout,
///     Status(u16),
/// }
///
/// #[monitored(name = "error_kind_doc::fetch")]
/// fn fetch(code: u16) -> Result<(), FetchError> {
///     match code {
///         200 => Ok(()),
///         0 => Err(FetchError::Timeout),
///         c => Err(FetchError::Status(c)),
///     }
/// }
///
/// let _ = (fetch(0), fetch(503), fetch(404), fetch(200));
/// let snap = monitor_core::registry().snapshot();
/// let f = snap.function("error_kind_doc::fetch").unwrap();
/// assert_eq!(f.errors, vec![("Status", 2), ("Timeout", 1)]);
/// ```
pub trait ErrorKind {
    /// The kind of this error.
    fn error_kind(&self) -> &'static str;
}

impl ErrorKind for io::Error {
    fn error_kind(&self) -> &'static str {
        io_kind_name(self.kind())
    }
}

impl ErrorKind for Box<dyn Error + Send + Sync> {
    fn error_kind(&self) -> &'static str {
        dyn_error_kind(&**self)
    }
}

impl ErrorKind for Box<dyn Error + Send> {
    fn error_kind(&self) -> &'static str {
        dyn_error_kind(&**self)
    }
}

impl ErrorKind for Box<dyn Error> {
    fn error_kind(&self) -> &'static str {
        dyn_error_kind(&**self)
    }
}

fn dyn_error_kind(e: &(dyn Error + 'static)) -> &'static str {
    match e.downcast_ref::<io::Error>() {
        Some(io) => io_kind_name(io.kind()),
        None => "dyn Error",
    }
}

/// The name of an [`io::ErrorKind`], without allocating.
pub(crate) fn io_kind_name(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind as K;
    match kind {
        K::NotFound => "NotFound",
        K::PermissionDenied => "PermissionDenied",
        K::ConnectionRefused => "ConnectionRefused",
        K::ConnectionReset => "ConnectionReset",
        K::HostUnreachable => "HostUnreachable",
        K::NetworkUnreachable => "NetworkUnreachable",
        K::ConnectionAborted => "ConnectionAborted",
        K::NotConnected => "NotConnected",
        K::AddrInUse => "AddrInUse",
        K::AddrNotAvailable => "AddrNotAvailable",
        K::NetworkDown => "NetworkDown",
        K::BrokenPipe => "BrokenPipe",
        K::AlreadyExists => "AlreadyExists",
        K::WouldBlock => "WouldBlock",
        K::NotADirectory => "NotADirectory",
        K::IsADirectory => "IsADirectory",
        K::DirectoryNotEmpty => "DirectoryNotEmpty",
        K::ReadOnlyFilesystem => "ReadOnlyFilesystem",
        K::StaleNetworkFileHandle => "StaleNetworkFileHandle",
        K::InvalidInput => "InvalidInput",
        K::InvalidData => "InvalidData",
        K::TimedOut => "TimedOut",
        K::WriteZero => "WriteZero",
        K::StorageFull => "StorageFull",
        K::NotSeekable => "NotSeekable",
        K::QuotaExceeded => "QuotaExceeded",
        K::FileTooLarge => "FileTooLarge",
        K::ResourceBusy => "ResourceBusy",
        K::ExecutableFileBusy => "ExecutableFileBusy",
        K::Deadlock => "Deadlock",
        K::CrossesDevices => "CrossesDevices",
        K::TooManyLinks => "TooManyLinks",
        K::InvalidFilename => "InvalidFilename",
        K::ArgumentListTooLong => "ArgumentListTooLong",
        K::Interrupted => "Interrupted",
        K::Unsupported => "Unsupported",
        K::UnexpectedEof => "UnexpectedEof",
        K::OutOfMemory => "OutOfMemory",
        K::Other => "Other",
        _ => "Uncategorized",
    }
}

/// The short name of a type: `alloc::string::String` → `String`, `foo::Wrapper<u8>` →
/// `Wrapper`. A name that says nothing alone (`Error`) keeps its path: `serde_json::error::Error`.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    let last = base.rsplit("::").next().unwrap_or(base);
    if last == "Error" || last.is_empty() {
        base
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(short_type_name("core::num::error::ParseIntError"), "ParseIntError");
        assert_eq!(short_type_name("a::Wrapper<b::C>"), "Wrapper");
        assert_eq!(short_type_name("serde_json::error::Error"), "serde_json::error::Error");
        assert_eq!(short_type_name("&str"), "&str");
        assert_eq!(short_type_name("()"), "()");
    }

    #[test]
    fn io_kinds() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "slow");
        assert_eq!(e.error_kind(), "TimedOut");
        let b: Box<dyn Error + Send + Sync> = Box::new(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(b.error_kind(), "NotFound");
        let b: Box<dyn Error> = "plain".into();
        assert_eq!(b.error_kind(), "dyn Error");
    }
}
