//! The body of the monitor's answers.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::render::Parts;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// How much of a text written as it is sent one frame carries, at least. It stays under the
/// size at which allocators map memory afresh, so each frame reuses memory the previous one
/// freed.
const FRAME: usize = 64 * 1024;

/// The body of every answer of [`Routes`](crate::Routes) and
/// [`MonitorService`](crate::MonitorService): a whole text, or one written a frame at a time
/// while it is sent (`/metrics` and `/funcs/json`, whose text at 10,000 functions is 33 MB and
/// 8 MB), so answering them never holds the whole text in memory.
/// It implements [`http_body::Body`]; read it with `http_body_util::BodyExt::collect`.
///
/// ```
/// use http_body::Body as _;
/// let body = monitor_http::Body::from("ok\n");
/// assert_eq!(body.size_hint().exact(), Some(3));
/// ```
#[derive(Debug)]
pub struct Body {
    kind: Kind,
}

enum Kind {
    /// The whole text, until it is taken.
    Whole(Option<Bytes>),
    /// A text written as it is sent.
    Parts(Box<dyn Parts>),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Whole(b) => f.debug_tuple("Whole").field(&b.as_ref().map(Bytes::len)).finish(),
            Kind::Parts(_) => f.write_str("Parts"),
        }
    }
}

impl Body {
    /// A body with nothing in it.
    ///
    /// ```
    /// use http_body::Body as _;
    /// assert!(monitor_http::Body::empty().is_end_stream());
    /// ```
    pub fn empty() -> Body {
        Body { kind: Kind::Whole(None) }
    }

    /// The text `writer` writes, written as it is read.
    pub(crate) fn parts(writer: impl Parts + 'static) -> Body {
        Body { kind: Kind::Parts(Box::new(writer)) }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body { kind: Kind::Whole((!bytes.is_empty()).then_some(bytes)) }
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let data = match &mut this.kind {
            Kind::Whole(bytes) => bytes.take(),
            Kind::Parts(writer) => {
                // A function's lines rarely pass a few kilobytes: room for the last one.
                let mut out = String::with_capacity(FRAME + 8 * 1024);
                if !writer.write(&mut out, FRAME) {
                    // Written out: the snapshot goes now, not when the connection does.
                    this.kind = Kind::Whole(None);
                }
                (!out.is_empty()).then(|| Bytes::from(out))
            }
        };
        Poll::Ready(data.map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Parts(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    fn frames(mut body: Body) -> Vec<Bytes> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let Ok(frame) = frame;
            out.extend(frame.into_data().ok());
        }
        assert!(body.is_end_stream());
        out
    }

    #[test]
    fn a_whole_body_is_one_frame_of_known_length() {
        let body = Body::from(String::from("abc"));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(frames(body), [Bytes::from_static(b"abc")]);
        assert!(frames(Body::from("")).is_empty());
        assert!(Body::empty().is_end_stream());
    }
}
