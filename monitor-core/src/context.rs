//! A running call's span context: its ids, its parent, its site and flags. What the
//! thread-local stack and every monitored future carry.

use crate::ids::{flags, SpanId, TraceId};
use crate::site::CallSite;

/// The identity of a running monitored call, as kept on the thread-local stack.
#[derive(Clone, Copy)]
pub(crate) struct SpanCtx {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// The parent's span id, 0 for none (span ids are never zero): 8 bytes where an
    /// `Option<SpanId>` takes 16, in a context every monitored future carries.
    pub(crate) parent: u64,
    /// The function ([`REMOTE_SITE`] for a remote parent: a plain reference keeps a niche,
    /// so `Option<SpanCtx>` stays as small as `SpanCtx` on the hot path).
    pub(crate) site: &'static CallSite,
    /// The site's id + 1: the caller key its callees record ([`ENTRY_KEY`] for remote).
    pub(crate) key: u32,
    /// [`flags`]: recorded, sampled, remote.
    pub(crate) flags: u8,
}

/// The site of remote contexts; not in the registry.
pub(crate) static REMOTE_SITE: CallSite = CallSite::new(
    Some(&crate::site::SiteLabels { name: Some("remote"), category: None }),
    || "remote",
    " ",
    0,
);

impl SpanCtx {
    /// The parent's span id, if there is a parent.
    pub(crate) fn parent_id(&self) -> Option<SpanId> {
        (self.parent != 0).then_some(SpanId::from_u64(self.parent))
    }

    /// The function, unless the context is remote.
    pub(crate) fn local_site(&self) -> Option<&'static CallSite> {
        (self.flags & flags::REMOTE == 0).then_some(self.site)
    }
}
