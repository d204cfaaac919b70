//! The renderers' one JSON writer: arrays, objects, keys and values appended to a `String`,
//! with the commas between items placed by the writer. Strings are escaped and numbers written
//! as JSON readers take them (see `util`), so what it writes is valid for any name or value.

use std::fmt::Write;

use super::util::{json_f64, json_str, push_u64};

/// Writes JSON into `out`. Every container opened is closed by the matching `end_*`.
pub(crate) struct Json<'a> {
    out: &'a mut String,
    /// One entry per open container: whether it has an item yet.
    open: Vec<bool>,
    /// A key was just written: the value that follows takes no comma.
    after_key: bool,
    /// Items of the containers opened from this depth on start on a line of their own.
    lines_from: usize,
}

impl<'a> Json<'a> {
    pub(crate) fn new(out: &'a mut String) -> Json<'a> {
        Json { out, open: Vec::new(), after_key: false, lines_from: usize::MAX }
    }

    /// Before a value or a key: the comma, unless it is the container's first item.
    fn item(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        let depth = self.open.len();
        if let Some(any) = self.open.last_mut() {
            if *any {
                self.out.push(',');
            }
            *any = true;
            if depth == self.lines_from {
                self.out.push('\n');
            }
        }
    }

    pub(crate) fn begin_array(&mut self) -> &mut Self {
        self.item();
        self.out.push('[');
        self.open.push(false);
        self
    }

    pub(crate) fn end_array(&mut self) -> &mut Self {
        self.open.pop();
        self.out.push(']');
        self
    }

    pub(crate) fn begin_object(&mut self) -> &mut Self {
        self.item();
        self.out.push('{');
        self.open.push(false);
        self
    }

    pub(crate) fn end_object(&mut self) -> &mut Self {
        self.open.pop();
        self.out.push('}');
        self
    }

    /// A key of the object being written; the next call writes its value.
    pub(crate) fn key(&mut self, key: &str) -> &mut Self {
        self.item();
        json_str(key, self.out);
        self.out.push(':');
        self.after_key = true;
        self
    }

    /// A key already quoted and escaped, with its colon (`"0.99":`), for keys written for many
    /// objects.
    pub(crate) fn escaped_key(&mut self, key: &str) -> &mut Self {
        self.item();
        self.out.push_str(key);
        self.after_key = true;
        self
    }

    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.item();
        json_str(v, self.out);
        self
    }

    pub(crate) fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.item();
        push_u64(v, self.out);
        self
    }

    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.item();
        let _ = write!(self.out, "{v}");
        self
    }

    /// A float; JSON has no NaN or infinity, so those are written as 0.
    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.item();
        json_f64(v, self.out);
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.item();
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.item();
        self.out.push_str("null");
        self
    }

    /// A value written by the caller, already valid JSON (`write` appends it).
    pub(crate) fn raw(&mut self, write: impl FnOnce(&mut String)) -> &mut Self {
        self.item();
        write(self.out);
        self
    }

    /// The items of the container opened next each start on a line of their own, for people
    /// reading the output (`curl`); no JSON meaning.
    pub(crate) fn one_per_line(&mut self) -> &mut Self {
        self.lines_from = self.open.len() + 1;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_go_between_items() {
        let mut out = String::new();
        let mut j = Json::new(&mut out);
        j.begin_object();
        j.key("a").u64(1).key("b").begin_array();
        for v in ["x", "y\"z"] {
            j.str(v);
        }
        j.begin_object().end_object().end_array();
        j.key("c").f64(f64::NAN).key("d").null().key("e").opt_str(Some("\u{1}"));
        j.end_object();
        assert_eq!(out, r#"{"a":1,"b":["x","y\"z",{}],"c":0,"d":null,"e":"\u0001"}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());

        let mut out = String::new();
        let mut j = Json::new(&mut out);
        j.one_per_line().begin_array().u64(1).begin_array().u64(2).u64(3).end_array().end_array();
        assert_eq!(out, "[\n1,\n[2,3]]");
    }
}
