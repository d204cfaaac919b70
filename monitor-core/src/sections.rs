//! The call sites `#[monitored]` declares, gathered by the linker before the program runs.
//!
//! On ELF targets each expansion puts a `&'static CallSite` in the `monitor_call_sites` link
//! section, and the linker's `__start_`/`__stop_` symbols bound the array they make: a static
//! and an attribute per function, nothing to type-check or run. Elsewhere `linkme` does the
//! same with the conventions of each platform's linker, at a higher cost in build time.
#![allow(unsafe_code)] // Reading a link section is unsafe by definition; see the SAFETY notes.

use crate::site::CallSite;

/// Every `#[monitored]` function's call site in the program.
pub(crate) fn call_sites() -> &'static [&'static CallSite] {
    imp::call_sites()
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "freebsd",
    target_os = "openbsd",
))]
mod imp {
    use crate::site::CallSite;

    /// An empty element, so that the section exists (and its bounds are defined) in a program
    /// with no monitored function.
    #[used]
    #[unsafe(link_section = "monitor_call_sites")]
    static PRESENT: [&CallSite; 0] = [];

    // SAFETY: the linker defines both symbols, at the start and the end of the section, for
    // any section whose name is a C identifier (and `PRESENT` makes sure there is one).
    unsafe extern "Rust" {
        #[link_name = "__start_monitor_call_sites"]
        static START: [&'static CallSite; 0];
        #[link_name = "__stop_monitor_call_sites"]
        static STOP: [&'static CallSite; 0];
    }

    pub(super) fn call_sites() -> &'static [&'static CallSite] {
        let start = (&raw const START).cast::<&'static CallSite>();
        let stop = (&raw const STOP).cast::<&'static CallSite>();
        // SAFETY: every item in the section is a `&'static CallSite` (the only statics put
        // there are the expansion's `__MONITOR_SITE_REF`s and `PRESENT`, of that type), so
        // the linker lays out an array of them, aligned, from `start` to `stop`; it is never
        // written after the program is loaded.
        unsafe {
            let len = usize::try_from(stop.offset_from(start)).unwrap_or(0);
            std::slice::from_raw_parts(start, len)
        }
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "freebsd",
    target_os = "openbsd",
)))]
mod imp {
    use crate::site::CallSite;

    pub(super) fn call_sites() -> &'static [&'static CallSite] {
        &crate::__private::CALL_SITES
    }
}

#[cfg(test)]
mod tests {
    #[crate::monitored(crate = crate)]
    fn in_the_section() {}

    #[test]
    fn the_section_holds_every_site_once() {
        let sites = super::call_sites();
        let here = sites.iter().filter(|s| s.name().ends_with("in_the_section")).count();
        assert_eq!(here, 1);
        assert!(sites.iter().all(|s| !s.name().is_empty()));
    }
}
